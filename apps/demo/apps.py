from django.apps import AppConfig


class DemoConfig(AppConfig):
    name = "apps.demo"
    verbose_name = "Demo jobs"

    def ready(self) -> None:
        from .schedules import add_walkthrough_schedules

        add_walkthrough_schedules()
