"""What people do to schedules: run now, enable, disable, duplicate, delete.

Admin actions and `manage.py schedules` call these; none of them holds the logic. Bulk
changes tell beat (`PeriodicTasks.update_changed()`) so it reloads within seconds.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django.db import transaction
from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone
from django_celery_beat.models import PeriodicTask, PeriodicTasks

from apps.jobs.catalog import ParameterError, clean_parameters, get_job
from apps.jobs.dispatch import record_and_send
from apps.jobs.models import Run, Source, State

from . import bounds
from .models import ScheduleOptions


def run_now(task: PeriodicTask, *, source: Source, user=None, label: str = "") -> Run:
    """Send the schedule's task once, now, with its arguments and execution options.

    A catalog job's stored parameters are validated again (ParameterError if the job
    changed since); the run records who asked and the schedule it came from.
    """
    problem = bounds.sending_problem(task)  # a row written by hand, e.g. kwargs not JSON
    if problem:
        field, _, message = problem.partition(": ")
        raise ParameterError({field: [message]})
    kwargs = _loads(task.kwargs, {})
    job = get_job(task.task)
    if job is not None:
        kwargs = clean_parameters(job, kwargs)
    return record_and_send(
        task.task, kwargs, args=_loads(task.args, []), source=source, user=user, label=label,
        schedule_name=task.name, options=execution_options(task),
    )  # fmt: skip


def execution_options(task: PeriodicTask) -> dict[str, Any]:
    """The PeriodicTask's own options, as beat would send them."""
    options: dict[str, Any] = {}
    for name in ("queue", "exchange", "routing_key", "priority"):
        if getattr(task, name) not in (None, ""):
            options[name] = getattr(task, name)
    if task.expire_seconds is not None:
        options["expires"] = task.expire_seconds
    elif task.expires is not None:
        options["expires"] = task.expires
    return options


def set_enabled(tasks: QuerySet[PeriodicTask], enabled: bool) -> int:
    """Enable or disable; re-enabling counts from now, so missed runs are not made up."""
    now = timezone.now()
    changed = tasks.exclude(enabled=enabled)
    if enabled:
        count = changed.update(enabled=True, last_run_at=now, date_changed=now)
    else:
        count = changed.update(enabled=False, last_run_at=None, date_changed=now)
    PeriodicTasks.update_changed()
    return count


@transaction.atomic
def duplicate(task: PeriodicTask) -> PeriodicTask:
    """A disabled copy (same schedule, arguments and options) named 'NAME (copy)'."""
    options = ScheduleOptions.objects.filter(periodic_task=task).first()
    copy = PeriodicTask.objects.get(pk=task.pk)
    copy.pk = copy.id = None
    copy.name = unused_name(f"{bounds.one_line(task.name)} (copy)")  # no CR/LF carried over
    copy.enabled = False
    copy.last_run_at, copy.total_run_count = None, 0
    copy.save()
    if options is not None:
        options.pk = None
        options.periodic_task = copy
        options.save()
    return copy


def unused_name(wanted: str) -> str:
    names = PeriodicTask.objects.filter(name__startswith=wanted).values_list("name", flat=True)
    taken = set(names)
    if wanted not in taken:
        return wanted
    return next(f"{wanted} {n}" for n in range(2, len(taken) + 3) if f"{wanted} {n}" not in taken)


def delete(task: PeriodicTask) -> None:
    task.delete()  # django-celery-beat's delete() tells beat


def recent_runs(task: PeriodicTask, user, limit: int = 20) -> QuerySet[Run]:
    """The schedule's newest runs that `user` may see (Run.objects.visible_to)."""
    runs = Run.objects.visible_to(user).filter(schedule_name=task.name)
    return runs.select_related("requested_by")[:limit]


def with_run_summary(tasks: QuerySet[PeriodicTask], now: dt.datetime) -> QuerySet:
    """Each task's last run, last success and runs in 24 h: subqueries, no N+1."""
    runs = Run.objects.filter(schedule_name=OuterRef("name")).order_by("-queued_at", "-id")
    successes = runs.filter(state=State.SUCCEEDED)
    recent = (
        Run.objects.filter(schedule_name=OuterRef("name"), queued_at__gte=now - dt.timedelta(1))
        .order_by()
        .values("schedule_name")
        .annotate(count=Count("pk"))
        .values("count")
    )
    return tasks.annotate(
        last_run_pk=Subquery(runs.values("pk")[:1]),
        last_run_state=Subquery(runs.values("state")[:1]),
        last_run_queued_at=Subquery(runs.values("queued_at")[:1]),
        last_success_at=Subquery(successes.values("finished_at")[:1]),
        runs_last_day=Coalesce(Subquery(recent[:1], output_field=IntegerField()), 0),
    )


def _loads(text: str | None, empty: Any) -> Any:
    return json.loads(text) if text else empty
