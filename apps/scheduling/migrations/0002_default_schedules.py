"""Switchyard's own housekeeping schedules, installed once: admin edits survive.

get_or_create by name, so re-running migrate (every deploy) changes nothing; they are
rows like any other schedule, not CELERY_BEAT_SCHEDULE entries that beat rewrites.
"""

import json

from django.conf import settings
from django.db import migrations
from django.utils import timezone

PRUNE = "switchyard: prune old runs and results"
SESSIONS = "switchyard: clear expired sessions"


def install(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
    ScheduleOptions = apps.get_model("scheduling", "ScheduleOptions")
    zone = settings.TIME_ZONE or "UTC"
    defaults = [
        (PRUNE, "apps.maintenance.tasks.prune_runs", ("30", "3"),
         {"older_than_days": settings.RESULT_RETENTION_DAYS},
         "Built in: deletes finished runs and results older than the retention period."),
        (SESSIONS, "apps.maintenance.tasks.clear_sessions", ("15", "4"), {},
         "Built in: deletes expired login sessions."),
    ]  # fmt: skip
    for name, task, (minute, hour), kwargs, description in defaults:
        daily, _ = CrontabSchedule.objects.get_or_create(
            minute=minute, hour=hour, day_of_month="*", month_of_year="*", day_of_week="*",
            timezone=zone,
        )  # fmt: skip
        periodic, created = PeriodicTask.objects.get_or_create(
            name=name,
            defaults={"task": task, "crontab": daily, "kwargs": json.dumps(kwargs),
                      "description": description},
        )  # fmt: skip
        if created:
            ScheduleOptions.objects.get_or_create(periodic_task=periodic,
                                                  defaults={"overlap": "skip"})  # fmt: skip
    PeriodicTasks.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})


def uninstall(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(
        name__in=[PRUNE, SESSIONS]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("scheduling", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(install, uninstall)]
