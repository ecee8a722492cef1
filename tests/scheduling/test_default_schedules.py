"""Switchyard's housekeeping schedules: installed by migrate, once, and left as edited."""

import importlib
import json

import pytest
from django.apps import apps
from django.conf import settings
from django_celery_beat.models import PeriodicTask

from tests.scheduling.makers import make_crontab

pytestmark = pytest.mark.django_db

defaults = importlib.import_module("apps.scheduling.migrations.0002_default_schedules")


def test_migrate_installs_the_daily_prune_and_session_cleanup():
    prune = PeriodicTask.objects.get(name=defaults.PRUNE)
    sessions = PeriodicTask.objects.get(name=defaults.SESSIONS)
    assert prune.task == "apps.maintenance.tasks.prune_runs"
    assert json.loads(prune.kwargs) == {"older_than_days": settings.RESULT_RETENTION_DAYS}
    assert sessions.task == "apps.maintenance.tasks.clear_sessions"
    assert (prune.crontab.minute, prune.crontab.hour) == ("30", "3")
    assert prune.options.overlap == sessions.options.overlap == "skip"


def test_installing_again_changes_nothing_an_admin_edited():
    prune = PeriodicTask.objects.get(name=defaults.PRUNE)
    prune.crontab = make_crontab("0 5 * * 6")
    prune.kwargs = json.dumps({"older_than_days": 90})
    prune.enabled = False
    prune.save()
    defaults.install(apps, None)
    prune.refresh_from_db()
    assert (prune.crontab.hour, prune.enabled) == ("5", False)
    assert json.loads(prune.kwargs) == {"older_than_days": 90}
    assert PeriodicTask.objects.filter(name__startswith="switchyard: ").count() >= 2
    assert PeriodicTask.objects.filter(name=defaults.PRUNE).count() == 1


def test_the_default_schedules_are_valid_in_the_admin_form():
    from apps.scheduling.forms import ScheduleTaskForm

    for name in (defaults.PRUNE, defaults.SESSIONS):
        task = PeriodicTask.objects.get(name=name)
        form = ScheduleTaskForm(instance=task)
        data = {key: form.get_initial_for_field(field, key) for key, field in form.fields.items()}
        bound = ScheduleTaskForm(data={k: v for k, v in data.items() if v not in (None, False)},
                                 instance=task)  # fmt: skip
        assert bound.is_valid(), bound.errors


def test_the_built_in_schedules_are_within_the_bounds_every_door_applies():
    from django.utils import timezone

    from apps.scheduling.preview import schedule_problem

    for name in (defaults.PRUNE, defaults.SESSIONS):
        task = PeriodicTask.objects.select_related("crontab", "options").get(name=name)
        assert schedule_problem(task, timezone.now()) is None, name
