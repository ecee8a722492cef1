"""A Django permission per catalog job: `jobs.run_<job name>`."""

from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType

from .catalog import Job, all_jobs


def sync_job_permissions(**kwargs) -> None:
    """Create the permission of every catalog job (post_migrate; idempotent)."""
    from .models import Run

    content_type = ContentType.objects.get_for_model(Run)
    for job in all_jobs():
        Permission.objects.get_or_create(
            content_type=content_type,
            codename=job.permission_codename,
            defaults={"name": f"Can run {job.title}"[:255]},
        )


def can_run(user, job: Job) -> bool:
    return user.is_active and (user.is_superuser or user.has_perm(job.permission))


def allowed_job_names(user) -> list[str]:
    return [job.name for job in all_jobs() if can_run(user, job)]
