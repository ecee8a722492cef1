"""The next run of each job over its enabled schedules, for the /jobs/ catalog page
(given to apps.jobs.upcoming by this app's ready())."""

import datetime as dt

from django_celery_beat.models import PeriodicTask

from . import preview


def next_runs(job_names: list[str], now: dt.datetime) -> dict[str, dt.datetime]:
    """The next time beat sends each job, over its enabled periodic tasks (one query)."""
    tasks = PeriodicTask.objects.filter(enabled=True, task__in=job_names).select_related(
        "interval", "crontab", "solar", "clocked", "switchyard"
    )
    upcoming: dict[str, dt.datetime] = {}
    for task in tasks:
        due = next_due(task, now)
        if due and (task.task not in upcoming or due < upcoming[task.task]):
            upcoming[task.task] = due
    return upcoming


def next_due(task: PeriodicTask, now: dt.datetime) -> dt.datetime | None:
    """When beat will next send this task (the scheduling preview's answer); None for a
    schedule beat skips as broken."""
    runs = preview.safe_upcoming_runs(task, now, 1)
    return runs[0] if runs else None
