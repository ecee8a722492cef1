from django.apps import AppConfig


class SchedulingConfig(AppConfig):
    name = "apps.scheduling"

    def ready(self) -> None:
        from . import bounds, overlap  # noqa: F401  (the overlap lock follows runs in workers)

        bounds.read_unknown_zones_leniently()
