from django.apps import AppConfig


class SchedulingConfig(AppConfig):
    name = "apps.scheduling"

    def ready(self) -> None:
        from . import overlap  # noqa: F401  (the overlap lock follows runs in workers)
