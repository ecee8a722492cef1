from django.apps import AppConfig


class ProjectConfig(AppConfig):
    """The project's own wiring: the deploy checks (project/checks.py), registered here
    rather than by an app, so they hold whichever apps are installed."""

    name = "project"
    verbose_name = "Switchyard"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
