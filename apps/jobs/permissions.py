"""Who may run a job, and who may see its runs: the one rule every entry point calls.

A catalog job has a Django permission of its own, `jobs.run_<job name>`; a plain Celery
task (or a name no catalog job has) may be run by superusers only. Views, the API, the
results and schedules admin (form, actions, run now), re-runs and reports all ask
`may_run`; nothing else re-derives it.
"""

import functools

from django.contrib.auth import backends as auth_backends
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connections, router

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


class ModelBackend(auth_backends.ModelBackend):
    """Django's ModelBackend, reading a user's permissions (their own and their groups')
    in one statement where Django builds and runs two ORM queries: a web or API start
    asks `may_run` once per request, and those queries were a tenth of the trigger
    latency before the run is recorded (issue 15, docs/performance.md). The same
    permissions, the same per-request caches (`_user_perm_cache`, `_group_perm_cache`,
    `_perm_cache`), and Django's own code for anything else (superusers, inactive and
    anonymous users, object permissions, `with_perm`)."""

    def get_all_permissions(self, user_obj, obj=None):
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if user_obj.is_superuser or hasattr(user_obj, "_perm_cache"):
            return super().get_all_permissions(user_obj, obj)
        own, from_groups = set(), set()
        with connections[router.db_for_read(Permission)].cursor() as cursor:
            cursor.execute(_all_permissions_sql(cursor.db.alias), [user_obj.pk, user_obj.pk])
            for source, app_label, codename in cursor.fetchall():
                (own if source == "user" else from_groups).add(f"{app_label}.{codename}")
        user_obj._user_perm_cache, user_obj._group_perm_cache = own, from_groups
        user_obj._perm_cache = own | from_groups
        return user_obj._perm_cache


@functools.cache
def _all_permissions_sql(alias: str) -> str:
    """Built once, from the models' meta: only quoted table and column names in it."""
    quote = connections[alias].ops.quote_name
    user_model = get_user_model()
    own = user_model.user_permissions.through._meta
    membership = user_model.groups.through._meta
    granted = Group.permissions.through._meta
    user_column = quote(own.get_field(user_model._meta.model_name).column)
    member_column = quote(membership.get_field(user_model._meta.model_name).column)
    group_of_member = quote(membership.get_field("group").column)
    group_granted = quote(granted.get_field("group").column)
    permission_of_user = quote(own.get_field("permission").column)
    permission_of_group = quote(granted.get_field("permission").column)
    permission, content_type = Permission._meta, ContentType._meta
    return (
        f"SELECT x.source, ct.{quote('app_label')}, p.{quote('codename')} FROM ("  # noqa: S608
        f"SELECT 'user' AS source, {permission_of_user} AS permission_id "
        f"FROM {quote(own.db_table)} WHERE {user_column} = %s "
        f"UNION ALL SELECT 'group', g.{permission_of_group} "
        f"FROM {quote(granted.db_table)} g JOIN {quote(membership.db_table)} m "
        f"ON m.{group_of_member} = g.{group_granted} WHERE m.{member_column} = %s"
        f") x JOIN {quote(permission.db_table)} p ON p.{quote('id')} = x.permission_id "
        f"JOIN {quote(content_type.db_table)} ct "
        f"ON ct.{quote('id')} = p.{quote(permission.get_field('content_type').column)}"
    )
