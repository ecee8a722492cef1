from django.apps import AppConfig


class MaintenanceConfig(AppConfig):
    name = "apps.maintenance"

    def ready(self) -> None:
        from . import checks  # noqa: F401 (registers the system checks)
