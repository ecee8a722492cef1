"""The walkthrough's periodic tasks come with apps.demo, and DEMO_JOBS decides whether a
process installs it (production's .env.example turns it off)."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from apps.demo.schedules import add_walkthrough_schedules
from project import celery_app

ROOT = Path(__file__).resolve().parents[2]
WALKTHROUGH = {"run every 1 minute", "add every Monday morning"}
SHOW = (
    "import django; django.setup(); from project import celery_app; "
    "from django.apps import apps; from apps.jobs.catalog import get_job; "
    "print(sorted(celery_app.conf.beat_schedule)); "
    "print(apps.is_installed('apps.demo'), get_job('apps.demo.tasks.add') is not None)"
)


def beat_schedule_in_a_fresh_process(**env: str) -> list[str]:
    """What a beat started with this environment would read: the schedule names, then
    whether apps.demo is installed and its `add` job known."""
    result = subprocess.run(
        [sys.executable, "-c", SHOW],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "project.settings", **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.splitlines()


def test_the_demo_app_gives_beat_the_walkthrough_schedules():
    names, installed = beat_schedule_in_a_fresh_process(DEMO_JOBS="true")
    assert set(ast.literal_eval(names)) >= WALKTHROUGH
    assert installed == "True True"


def test_without_demo_jobs_beat_gets_no_walkthrough_schedule_and_no_demo_job():
    names, installed = beat_schedule_in_a_fresh_process(DEMO_JOBS="false")
    assert WALKTHROUGH.isdisjoint(ast.literal_eval(names))
    assert installed == "False False"


def test_demo_jobs_is_on_by_default_on_a_laptop():
    env = {k: v for k, v in os.environ.items() if k != "DEMO_JOBS"}
    result = subprocess.run(
        [sys.executable, "-c", SHOW], cwd=ROOT, env=env, capture_output=True, text=True,
        check=True,
    )  # fmt: skip
    assert "True True" in result.stdout


def test_the_production_env_example_turns_the_demo_jobs_off():
    assert "\nDEMO_JOBS=false\n" in (ROOT / ".env.example").read_text()


@pytest.mark.parametrize("name", sorted(WALKTHROUGH))
def test_the_schedules_run_add_as_the_walkthrough_says(name):
    add_walkthrough_schedules()  # again: same names, same entries
    entry = celery_app.conf.beat_schedule[name]
    assert entry["task"] == "apps.demo.tasks.add"


@pytest.mark.django_db
def test_an_upgrade_removes_the_walkthrough_rows_an_earlier_beat_stored_and_nothing_else():
    from importlib import import_module

    from django.apps import apps
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    every, _ = IntervalSchedule.objects.get_or_create(every=60, period="seconds")
    for name in sorted(WALKTHROUGH):
        PeriodicTask.objects.create(name=name, task="apps.demo.tasks.add", interval=every)
    PeriodicTask.objects.create(name="mine", task="apps.demo.tasks.add", interval=every)
    migration = import_module("apps.scheduling.migrations.0005_remove_walkthrough_schedules")
    migration.remove(apps, None)
    assert set(PeriodicTask.objects.values_list("name", flat=True)) & (WALKTHROUGH | {"mine"}) == {
        "mine"
    }
