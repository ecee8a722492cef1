"""Schedules holding every out-of-range value the model fields can store, written straight
to the tables (bulk_create, update, raw SQL) as a hand, an older version or another tool
would: none of Switchyard's validation runs."""

import datetime as dt
import json

from django.db import connection
from django.utils import timezone
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    PeriodicTasks,
    SolarSchedule,
)

from apps.scheduling.models import ScheduleOptions

FAR = dt.datetime(9999, 12, 31, tzinfo=dt.UTC)
LONG_AGO = dt.datetime(1, 1, 2, tzinfo=dt.UTC)
MUL = "apps.demo.tasks.mul"  # outside the catalog: its args and kwargs are stored as given
CRONTABS = {  # name -> (minute, hour, day_of_month, month_of_year, day_of_week)
    "bad cron minute": ("banana", "*", "*", "*", "*"),
    "bad cron hour": ("0", "99", "*", "*", "*"),
    "bad cron 31 February": ("0", "0", "31", "2", "*"),
    "bad cron day of week": ("0", "0", "*", "*", "9-12"),
    "bad cron step zero": ("*/0", "*", "*", "*", "*"),
}
INTERVALS = {  # name -> (every, period)
    "bad interval 2**31-1 days": (2**31 - 1, "days"),
    "bad interval 3000000 days": (3000000, "days"),
    "bad interval 0 seconds": (0, "seconds"),
    "bad interval 1 microsecond": (1, "microseconds"),
    "bad interval period": (5, "fortnights"),
}
TASK_FIELDS = {  # name -> fields of an otherwise good interval task
    "bad start_time far": {"start_time": FAR},
    "bad start_time long ago": {"start_time": LONG_AGO},
    "bad expires far": {"expires": FAR},
    "bad last_run_at far": {"last_run_at": FAR},
    "bad kwargs not json": {"kwargs": "{not json"},
    "bad kwargs a list": {"kwargs": "[1, 2]"},
    "bad args an object": {"args": '{"x": 1}'},
    # JSON to Python, but no run record can store it (SQLite's INSERT OR IGNORE dropped
    # the record while beat sent the message anyway).
    "bad args 1e309": {"task": MUL, "args": "[1e309, 2]", "kwargs": "{}"},
    "bad args NaN": {"task": MUL, "args": "[NaN, 2]", "kwargs": "{}"},
    "bad kwargs Infinity": {"task": MUL, "kwargs": '{"x": Infinity, "y": 2}'},
    "bad kwargs lone surrogate": {"task": MUL, "kwargs": '{"x": "\\ud800", "y": 2}'},
    "bad headers not json": {"headers": "nope"},
    "bad headers a list": {"headers": "[1]"},
    "bad headers name another task": {"headers": '{"task": "apps.demo.tasks.mul", "id": "x"}'},
    "bad expire_seconds": {"expire_seconds": 2**31 - 1},
    "bad priority": {"priority": 2**31 - 1},
    "bad total_run_count": {"total_run_count": 2**31 - 1},
    "bad no schedule": {"interval": None},
}
# Not broken for beat (it can compute them), but must not stop it or the alert sweep.
ODD_BUT_RUNNABLE = {
    "odd unknown task": {"task": "no.such.task"},
    "odd name\r\nBcc: someone@example.com": {},
    "odd queue with a line break": {"queue": "q\r\n\x1b"},
    "odd exchange no one declared": {"exchange": "no-such-exchange"},
    "odd routing key": {"routing_key": "\x07" * 200},
    "odd description": {"description": "\x1b\r\n" * 1000},
}


def make_bad_rows(queue: str, *, odd_due_now: bool = False) -> dict[str, str]:
    """Write the rows; {schedule name: the field that is out of range}. `odd_due_now`:
    the odd but runnable ones are overdue, so beat sends them at once."""
    every_hour = IntervalSchedule.objects.get_or_create(every=1, period="hours")[0]
    base = {"task": "apps.demo.tasks.add", "kwargs": json.dumps({"x": 1, "y": 2}),
            "queue": queue, "interval": every_hour}  # fmt: skip
    tasks, made = [], {}
    for name, (every, period) in INTERVALS.items():
        interval = IntervalSchedule.objects.bulk_create(
            [IntervalSchedule(every=every, period=period)]
        )[0]
        tasks.append(PeriodicTask(name=name, **{**base, "interval": interval}))
        made[name] = "interval"
    for name, fields in CRONTABS.items():
        cron = CrontabSchedule.objects.bulk_create([CrontabSchedule(
            **dict(zip(("minute", "hour", "day_of_month", "month_of_year", "day_of_week"),
                       fields, strict=True)), timezone="UTC")])[0]  # fmt: skip
        tasks.append(PeriodicTask(name=name, **{**base, "interval": None, "crontab": cron}))
        made[name] = "crontab"
    tasks.append(_zone_garbage(base))
    made["bad cron time zone"] = "crontab timezone"
    clocked = ClockedSchedule.objects.bulk_create([ClockedSchedule(clocked_time=FAR)])[0]
    tasks.append(PeriodicTask(name="bad clocked far", one_off=True,
                              **{**base, "interval": None, "clocked": clocked}))  # fmt: skip
    made["bad clocked far"] = "clocked_time"
    solar = SolarSchedule.objects.bulk_create(
        [SolarSchedule(event="sunrise", latitude=999, longitude=-999)]
    )[0]
    tasks.append(PeriodicTask(name="bad solar place", **{**base, "interval": None,
                                                         "solar": solar}))  # fmt: skip
    made["bad solar place"] = "latitude/longitude"
    moon = SolarSchedule.objects.bulk_create(
        [SolarSchedule(event="blue moon", latitude=10, longitude=10)]
    )[0]
    tasks.append(PeriodicTask(name="bad solar event", **{**base, "interval": None,
                                                         "solar": moon}))  # fmt: skip
    made["bad solar event"] = "solar event"
    for name, fields in TASK_FIELDS.items():
        tasks.append(PeriodicTask(name=name, **{**base, **fields}))
        made[name] = ", ".join(fields)
    overdue = {"last_run_at": timezone.now() - dt.timedelta(hours=2)} if odd_due_now else {}
    for name, fields in ODD_BUT_RUNNABLE.items():
        tasks.append(PeriodicTask(name=name, **{**base, **overdue, **fields}))
        made[name] = ", ".join(fields) or "name"
    PeriodicTask.objects.bulk_create(tasks)
    made["bad grace huge"] = _grace_garbage(base)
    PeriodicTasks.update_changed()
    return made


def broken_names(made: dict[str, str]) -> list[str]:
    return [name for name in made if name.startswith("bad ")]


def _zone_garbage(base: dict) -> PeriodicTask:
    cron = CrontabSchedule.objects.create(minute="0", hour="*", timezone="UTC")
    with connection.cursor() as cursor:  # the field refuses it: write the column directly
        cursor.execute(f"UPDATE {CrontabSchedule._meta.db_table} SET timezone = %s "
                       "WHERE id = %s", ["Mars/Olympus_Mons", cron.pk])  # fmt: skip
    return PeriodicTask(name="bad cron time zone", crontab_id=cron.pk,
                        **{**base, "interval": None})  # fmt: skip


def _grace_garbage(base: dict) -> str:
    task = PeriodicTask.objects.bulk_create([PeriodicTask(name="bad grace huge", **base)])[0]
    task = PeriodicTask.objects.get(name="bad grace huge")
    huge = 99999999999999 if connection.vendor == "sqlite" else 2**31 - 1
    ScheduleOptions.objects.bulk_create([ScheduleOptions(periodic_task=task, grace_seconds=huge)])
    return "grace_seconds"
