from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "apps.jobs"
    verbose_name = "Jobs and runs"

    def ready(self) -> None:
        from celery import current_app
        from django.db.models.signals import post_migrate
        from django.utils.module_loading import autodiscover_modules

        # connections first: its task_prerun handler must run before recording's.
        from . import permissions, redis_clients, secrets, sending  # noqa: F401  (signals)
        from .abandoned_writes import install as drop_abandoned_writes
        from .worker import broker_fixes, connections, recording, timers  # noqa: F401  (signals)

        # Celery imports tasks modules lazily (only in workers and beat); the catalog
        # must be full in every process: web, manage.py (jobs, migrate's permissions).
        autodiscover_modules("tasks")
        post_migrate.connect(permissions.sync_job_permissions, sender=self)
        sending.guard_publishing(current_app)
        drop_abandoned_writes()  # every process that talks to Redis: web, beat, workers
        redis_clients.reuse_per_channel()
