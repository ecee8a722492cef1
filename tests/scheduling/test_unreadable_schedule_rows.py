"""Schedule rows whose stored values the model fields cannot even read (a latitude that is
not a number or is infinite, a time zone zoneinfo refuses, a clocked time that is not a
date), written straight to the tables as a hand or an older version would. Beat skips
each with one log line and still sees the schedules added after it; the admin pages and
`manage.py schedules` answer and call the row broken."""

import datetime as dt
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.urls import reverse
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    PeriodicTask,
    PeriodicTasks,
    SolarSchedule,
)

from tests.helpers import make_superuser

from .beat_helpers import make_queue_name, make_schedule, make_scheduler, queued_messages

pytestmark = pytest.mark.django_db

SQLITE_ONLY = pytest.mark.skipif("connection.vendor != 'sqlite'",
                                 reason="PostgreSQL's column types refuse the value")  # fmt: skip
# name -> (schedule table, column, stored text)
ROWS = {
    "latitude abc": (SolarSchedule, "latitude", "abc"),
    "latitude 9e999": (SolarSchedule, "latitude", "9e999"),
    "longitude abc": (SolarSchedule, "longitude", "abc"),
    "zone /UTC": (CrontabSchedule, "timezone", "/UTC"),
    "zone Europe//Berlin": (CrontabSchedule, "timezone", "Europe//Berlin"),
    "zone ../../etc/passwd": (CrontabSchedule, "timezone", "../../etc/passwd"),
    "zone empty": (CrontabSchedule, "timezone", ""),
    "clocked garbage": (ClockedSchedule, "clocked_time", "garbage"),
}
ON_SQLITE_ONLY = {"latitude abc", "latitude 9e999", "longitude abc", "clocked garbage"}
NAMES = [pytest.param(name, marks=[SQLITE_ONLY] if name in ON_SQLITE_ONLY else [])
         for name in ROWS]  # fmt: skip
KIND = {SolarSchedule: "solar", CrontabSchedule: "crontab", ClockedSchedule: "clocked"}


def make_unreadable_row(name: str) -> PeriodicTask:
    """An enabled schedule of `name`'s kind whose column holds `name`'s text, written past
    the model (and, for a solar row's number, stored as SQLite stores it: as given)."""
    model, column, text = ROWS[name]
    row = {SolarSchedule: lambda: SolarSchedule.objects.create(event="sunrise", latitude=10,
                                                               longitude=0),
           CrontabSchedule: lambda: CrontabSchedule.objects.create(minute="0", timezone="UTC"),
           ClockedSchedule: lambda: ClockedSchedule.objects.create(
               clocked_time=dt.datetime(2030, 1, 1, tzinfo=dt.UTC))}[model]()  # fmt: skip
    value = float(text) if text == "9e999" else text
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {model._meta.db_table} SET {column} = %s WHERE id = %s",
                       [value, row.pk])  # fmt: skip
    task = PeriodicTask.objects.bulk_create([PeriodicTask(
        name=name, task="apps.demo.tasks.add", kwargs="{}", one_off=model is ClockedSchedule,
        **{f"{KIND[model]}_id": row.pk})])[0]  # fmt: skip
    PeriodicTasks.update_changed()
    return task


@pytest.fixture
def staff(client):
    client.force_login(make_superuser())
    return client


# Beat ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_beat_skips_an_unreadable_row_with_one_line_and_still_sees_a_schedule_added_after_it(
    name, caplog
):
    queue = make_queue_name()
    beat = make_scheduler()
    try:
        beat.tick()
        make_unreadable_row(name)
        for _ in range(2):
            beat.tick()
        make_schedule("added later", due_in=-1, queue=queue)
        for _ in range(2):
            beat.tick()
    finally:
        beat.close()
    assert [m["headers"]["periodic_task_name"] for m in queued_messages(queue)] == ["added later"]
    assert name in beat.broken and name not in beat.schedule
    skipped = [r for r in caplog.records if f"skipping schedule {name!r}" in r.getMessage()]
    assert len(skipped) == 1
    assert not [r for r in caplog.records if "unexpected error" in r.getMessage()]


# The admin -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_the_periodic_task_list_answers_and_marks_the_unreadable_row_broken(staff, name):
    make_unreadable_row(name)
    response = staff.get(reverse("admin:django_celery_beat_periodictask_changelist"))
    assert response.status_code == 200
    assert response.content.decode().count('class="switchyard-broken"') == 1


@pytest.mark.parametrize("name", NAMES)
def test_the_change_page_of_an_unreadable_row_answers_and_says_it_is_broken(staff, name):
    task = make_unreadable_row(name)
    response = staff.get(reverse("admin:django_celery_beat_periodictask_change", args=[task.pk]))
    assert response.status_code == 200
    assert "Broken: beat skips this schedule" in response.content.decode()


@pytest.mark.parametrize("name", NAMES)
def test_the_schedule_rows_own_list_and_change_page_answer(staff, name):
    model = ROWS[name][0]
    row_id = getattr(make_unreadable_row(name), f"{KIND[model]}_id")
    prefix = f"admin:django_celery_beat_{model._meta.model_name}"
    assert staff.get(reverse(f"{prefix}_changelist")).status_code == 200
    assert staff.get(reverse(f"{prefix}_change", args=[row_id])).status_code == 200


# manage.py schedules ----------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_schedules_list_and_next_call_an_unreadable_row_broken(name):
    make_unreadable_row(name)
    out = StringIO()
    call_command("schedules", "list", stdout=out)
    [line] = [line for line in out.getvalue().splitlines() if line.startswith(name)]
    assert line.startswith(f"{name}  [enabled]") and "next: broken" in line
    out = StringIO()
    call_command("schedules", "next", name, stdout=out)
    assert "broken: beat skips it" in out.getvalue()
