"""Who may run a job, and who may see its runs: the one rule every entry point calls.

A catalog job has a Django permission of its own, `jobs.run_<job name>`; a plain Celery
task (or a name no catalog job has) may be run by superusers only. Views, the API, the
results and schedules admin (form, actions, run now), re-runs and reports all ask
`may_run`; nothing else re-derives it.
"""

from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType

from .catalog import Job, all_jobs, get_job

VIEW_ALL_RUNS = "jobs.view_all_runs"


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


def may_run(user, job: Job | str | None) -> bool:
    """May this user start `job` (a catalog job, or any task name) by hand, schedule it,
    enable its schedule or run it again? Catalog jobs by their permission; plain Celery
    tasks and unknown names only superusers."""
    if user is None or not user.is_active:
        return False
    if user.is_superuser:
        return True
    if isinstance(job, str):
        job = get_job(job)
    return job is not None and user.has_perm(job.permission)


def sees_all_runs(user) -> bool:
    """Superusers and holders of `jobs.view_all_runs` see every job's runs and payloads."""
    return bool(user and user.is_active and (user.is_superuser or user.has_perm(VIEW_ALL_RUNS)))


def may_see(user, job_name: str) -> bool:
    """May this user read the parameters, results and tracebacks of this job's runs?"""
    return sees_all_runs(user) or may_run(user, job_name)


def allowed_job_names(user) -> list[str]:
    return [job.name for job in all_jobs() if may_run(user, job)]
