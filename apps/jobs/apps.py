from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "apps.jobs"
    verbose_name = "Jobs and runs"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from . import permissions, recording  # noqa: F401  (connects Celery signals)

        post_migrate.connect(permissions.sync_job_permissions, sender=self)
