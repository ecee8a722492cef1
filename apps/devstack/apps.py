from django.apps import AppConfig


class DevstackConfig(AppConfig):
    name = "apps.devstack"
    verbose_name = "Development stack"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
