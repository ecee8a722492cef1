from django.apps import AppConfig


class SchedulingConfig(AppConfig):
    name = "apps.scheduling"

    def ready(self) -> None:
        from apps.jobs import upcoming as jobs_upcoming

        from . import (  # overlap: the lock follows runs in workers
            bounds,
            checks,  # noqa: F401  (registers beat's system checks)
            upcoming,
        )

        bounds.read_stored_schedules_leniently()
        jobs_upcoming.provide(upcoming.next_runs)  # the next run on /jobs/
