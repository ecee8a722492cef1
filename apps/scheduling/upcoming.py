"""The next run of each job over its enabled schedules, for the /jobs/ catalog page
(given to apps.jobs.upcoming by this app's ready())."""

import datetime as dt

from .models import Schedule


def next_runs(job_names: list[str], now: dt.datetime) -> dict[str, dt.datetime]:
    """The next time beat sends each job, over its enabled schedules (one query)."""
    upcoming: dict[str, dt.datetime] = {}
    for schedule in Schedule.objects.enabled().for_jobs(job_names).with_schedules():
        due = schedule.next_run_at(now)  # None for a schedule beat skips as broken
        if due and (schedule.task not in upcoming or due < upcoming[schedule.task]):
            upcoming[schedule.task] = due
    return upcoming
