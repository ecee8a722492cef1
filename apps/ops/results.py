"""django-celery-results' TaskResult rows joined to Switchyard's runs: for the admin.

Plain functions: the admin's columns, filters and actions are thin wrappers over these.
"""

import ast
import json
from collections.abc import Iterable
from datetime import timedelta

from celery import states
from django.core.cache import cache
from django.db import connection
from django.db.models import Model, Q
from django_celery_beat.models import PeriodicTask
from django_celery_results.models import TaskResult

from apps.jobs import inspect
from apps.jobs.catalog import ParameterError
from apps.jobs.dispatch import (
    cancel_refusal,
    cancel_run,
    record_and_send,
    rerun,
    revalidated,
    running_refusal,
)
from apps.jobs.models import Run, Source
from apps.jobs.permissions import allowed_job_names, may_run, sees_all_runs

RUNNING = {states.STARTED, states.RECEIVED, states.RETRY, "PROGRESS"}
DISTINCT_CACHE_SECONDS = 60
# What the list shows of each run (not its JSON parameters).
RUN_COLUMNS = ("task_id", "job_name", "source", "requested_by__username", "requested_by_label",
               "schedule_name", "queued_at", "started_at", "finished_at")  # fmt: skip


def attach_runs(results: Iterable[TaskResult]) -> None:
    """Give each result `.run` (its Run or None) and `.schedule_pk`: two queries a page."""
    results = list(results)
    runs = Run.objects.filter(task_id__in=[r.task_id for r in results]).select_related(
        "requested_by"
    )
    by_task = {run.task_id: run for run in runs.only(*RUN_COLUMNS)}
    for result in results:
        result.run = by_task.get(result.task_id)
        result.schedule_name = result.periodic_task_name or (
            result.run.schedule_name if result.run else ""
        )
    names = {r.schedule_name for r in results if r.schedule_name}
    schedules = dict(PeriodicTask.objects.filter(name__in=names).values_list("name", "pk"))
    for result in results:
        result.schedule_pk = schedules.get(result.schedule_name)


def visible_to(results, user):
    """The results this user may see: those of the jobs they may run, and of the runs they
    started (Run.objects.visible_to's rule, applied to results)."""
    if sees_all_runs(user):
        return results
    own = Run.objects.visible_to(user).values("task_id")
    return results.filter(Q(task_name__in=allowed_job_names(user)) | Q(task_id__in=own))


def run_time(result: TaskResult) -> timedelta | None:
    run = getattr(result, "run", None)
    if run and run.run_time is not None:
        return run.run_time
    if result.date_started and result.status in states.READY_STATES:
        return result.date_done - result.date_started
    return None


def distinct_values(model: type[Model], column: str, limit: int = 200) -> list[str]:
    """Distinct values of an indexed column by skipping through its index (a "loose
    index scan"): one index probe per value, not a scan of every row. Cached briefly."""
    key = f"ops:distinct:{model._meta.db_table}:{column}"
    values = cache.get(key)
    if values is None:
        values = _skip_scan(model._meta.db_table, column, limit)
        cache.set(key, values, DISTINCT_CACHE_SECONDS)
    return values


def _skip_scan(table: str, column: str, limit: int) -> list[str]:
    t, c = connection.ops.quote_name(table), connection.ops.quote_name(column)
    sql = (
        f"WITH RECURSIVE v(x) AS (SELECT MIN({c}) FROM {t} "  # noqa: S608 (quoted names)
        f"UNION ALL SELECT (SELECT MIN({c}) FROM {t} WHERE {c} > v.x) FROM v "
        f"WHERE v.x IS NOT NULL) SELECT x FROM v WHERE x IS NOT NULL LIMIT %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [limit])
        return [row[0] for row in cursor.fetchall()]


# Actions ------------------------------------------------------------------------------


class NotRetried(Exception):
    """Why one result could not be retried (shown to the admin user)."""


def retry(result: TaskResult, user) -> Run:
    """Run a failed task again with the same arguments, started by `user` from admin."""
    if result.status != states.FAILURE:
        raise NotRetried(f"{result.task_id} did not fail")
    run = Run.objects.filter(task_id=result.task_id).first()
    job_name = run.job_name if run else result.task_name or ""
    if not may_run(user, job_name):
        raise NotRetried(f"you may not run {job_name or 'this task'}")
    try:
        if run:
            return rerun(run, source=Source.ADMIN, user=user)
        args, kwargs = _arguments(result.task_args, list), _arguments(result.task_kwargs, dict)
        kwargs = revalidated(result.task_name, kwargs)
    except ParameterError as error:
        raise NotRetried(f"its parameters are refused: {error.one_line()}") from None
    return record_and_send(result.task_name, kwargs, args=args, source=Source.ADMIN, user=user)


def _arguments(stored: str | None, kind: type):
    """Celery stores args/kwargs as JSON of their repr; read the literal back."""
    try:
        value = json.loads(stored) if stored else kind()
        if isinstance(value, str):
            value = ast.literal_eval(value)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        # TypeError: a literal Python cannot build, such as {[1]: 2} (an unhashable key)
        raise NotRetried(f"its arguments cannot be read back: {stored!r:.80}") from None
    if isinstance(value, tuple):
        value = list(value)
    if not isinstance(value, kind):
        raise NotRetried(f"its arguments cannot be read back: {stored!r:.80}")
    return value


class NotTerminated(Exception):
    """Why one running task was not stopped (shown to the admin user)."""


def terminate(result: TaskResult, user) -> bool:
    """Stop a running task as a run's Cancel does: dispatch's rule decides, and a task of
    a job that is not cancellable is never terminated (NotTerminated says so). False for
    a row not running or not this user's to stop, or a broker that is down."""
    if result.status not in RUNNING or not may_run(user, result.task_name or ""):
        return False
    run = Run.objects.filter(task_id=result.task_id).first()
    if run is not None and not cancel_run(run, by=user):
        raise NotTerminated(cancel_refusal(run))
    refusal = running_refusal(run.job_name if run else result.task_name or "")
    if run is None and refusal:
        raise NotTerminated(refusal)  # no run record: a started task of its job
    # A run its record said was not started yet (a stale row) was revoked, not terminated.
    return inspect.revoke(result.task_id, terminate=refusal is None)
