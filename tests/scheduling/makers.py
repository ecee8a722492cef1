"""Plain `make_*` helpers for the scheduling tests."""

import datetime as dt
import json
import uuid

from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from apps.jobs.models import Run, Source, State
from apps.scheduling.models import ScheduleOptions


def make_crontab(expression: str = "0 3 * * *", zone: str = "UTC") -> CrontabSchedule:
    minute, hour, day_of_month, month_of_year, day_of_week = expression.split()
    return CrontabSchedule.objects.get_or_create(
        minute=minute, hour=hour, day_of_month=day_of_month, month_of_year=month_of_year,
        day_of_week=day_of_week, timezone=zone,
    )[0]  # fmt: skip


def make_interval(every: int = 10, period: str = "minutes") -> IntervalSchedule:
    return IntervalSchedule.objects.get_or_create(every=every, period=period)[0]


def make_schedule(name: str = "nightly add", **fields) -> PeriodicTask:
    fields.setdefault("task", "apps.demo.tasks.add")
    fields.setdefault("kwargs", json.dumps({"x": 2, "y": 3}))
    if not any(fields.get(kind) for kind in ("interval", "crontab", "solar", "clocked")):
        fields["crontab"] = make_crontab()
    options = fields.pop("options", None)
    task = PeriodicTask.objects.create(name=name, **fields)
    if options is not None:
        ScheduleOptions.objects.create(periodic_task=task, **options)
    return task


def make_run(schedule: PeriodicTask, state: str = State.SUCCEEDED, ago: dt.timedelta | None = None,
             **fields) -> Run:  # fmt: skip
    queued = timezone.now() - (ago or dt.timedelta(minutes=5))
    fields.setdefault("finished_at", queued + dt.timedelta(seconds=1))
    return Run.objects.create(
        task_id=str(uuid.uuid4()), job_name=schedule.task, parameters=json.loads(schedule.kwargs),
        source=Source.SCHEDULE, schedule_name=schedule.name, state=state, queued_at=queued,
        **fields,
    )  # fmt: skip
