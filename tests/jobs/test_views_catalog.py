"""/jobs/: the catalog a user may run, each job with its last and next run."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
)

from apps.jobs.models import State
from apps.scheduling.models import Schedule
from tests.helpers import make_run, make_superuser, make_user

pytestmark = pytest.mark.django_db

ADD = "apps.demo.tasks.add"
COUNTDOWN = "apps.demo.tasks.countdown"


def make_periodic_task(task: str = COUNTDOWN, **kw) -> PeriodicTask:
    if not any(kind in kw for kind in ("interval", "crontab", "clocked")):
        kw["interval"], _ = IntervalSchedule.objects.get_or_create(every=10, period="minutes")
    kw.setdefault("name", f"{task} {PeriodicTask.objects.count()}")
    return PeriodicTask.objects.create(task=task, **kw)


def entries(response) -> dict:
    return {e.job.name: e for _, group in response.context["groups"] for e in group}


def test_the_catalog_needs_a_login(client):
    response = client.get("/jobs/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/jobs/")


def test_the_catalog_lists_only_the_jobs_the_user_may_run(client):
    client.force_login(make_user("alice", jobs=(ADD,)))
    response = client.get("/jobs/")
    assert list(entries(response)) == [ADD]
    assert b"Add two numbers" in response.content
    assert b"Count down" not in response.content


def test_a_superuser_sees_every_job_grouped(client):
    client.force_login(make_superuser())
    response = client.get("/jobs/")
    groups = dict(response.context["groups"])
    assert {e.job.name for e in groups["Demo"]} >= {ADD, COUNTDOWN, "apps.demo.tasks.flaky"}


def test_each_job_shows_its_newest_run(client):
    now = timezone.now()
    make_run(ADD, state=State.FAILED, queued_at=now - dt.timedelta(hours=1))
    newest = make_run(ADD, state=State.SUCCEEDED, queued_at=now)
    make_run(COUNTDOWN, state=State.STARTED, queued_at=now - dt.timedelta(days=1))
    client.force_login(make_superuser())
    found = entries(client.get("/jobs/"))
    assert found[ADD].last_run == newest
    assert found[COUNTDOWN].last_run.state == State.STARTED
    assert found["apps.demo.tasks.flaky"].last_run is None


def test_each_job_shows_the_soonest_run_of_its_enabled_schedules(client):
    now = timezone.now()
    make_periodic_task(COUNTDOWN, last_run_at=now - dt.timedelta(minutes=2))
    hourly, _ = IntervalSchedule.objects.get_or_create(every=1, period="hours")
    make_periodic_task(COUNTDOWN, interval=hourly, last_run_at=now)
    make_periodic_task(ADD, enabled=False)
    client.force_login(make_superuser())
    found = entries(client.get("/jobs/"))
    expected = now + dt.timedelta(minutes=8)
    assert abs(found[COUNTDOWN].next_run_at - expected) < dt.timedelta(seconds=30)
    assert found[ADD].next_run_at is None
    assert b"not scheduled" in client.get("/jobs/").content


def test_the_catalog_queries_do_not_grow_with_runs_and_schedules(client):
    client.force_login(make_superuser())
    make_run(ADD)
    make_periodic_task(COUNTDOWN)
    client.get("/jobs/")  # warm the session and content-type caches
    with CaptureQueriesContext(connection) as few:
        client.get("/jobs/")
    for _ in range(5):
        make_run(ADD)
        make_run(COUNTDOWN)
        make_periodic_task(COUNTDOWN)
        make_periodic_task(ADD)
    with CaptureQueriesContext(connection) as many:
        client.get("/jobs/")
    assert len(many) == len(few)


def next_due(task: PeriodicTask, now: dt.datetime) -> dt.datetime | None:
    """What /jobs/ shows as the next run: the Schedule's one rule."""
    return Schedule.objects.get(pk=task.pk).next_run_at(now)


def test_an_interval_schedule_is_next_due_one_interval_after_its_last_run():
    now = timezone.now()
    task = make_periodic_task(last_run_at=now - dt.timedelta(minutes=3))
    assert abs(next_due(task, now) - (now + dt.timedelta(minutes=7))) < dt.timedelta(seconds=1)


def test_an_overdue_schedule_is_due_now():
    now = timezone.now()
    task = make_periodic_task(last_run_at=now - dt.timedelta(hours=5))
    assert next_due(task, now) == now


def test_a_crontab_schedule_is_next_due_at_its_next_matching_minute():
    crontab = CrontabSchedule.objects.create(minute="30", hour="4", timezone="UTC")
    now = timezone.now()
    task = make_periodic_task(crontab=crontab, last_run_at=now)
    expected = now.astimezone(dt.UTC).replace(hour=4, minute=30, second=0, microsecond=0)
    if expected <= now:
        expected += dt.timedelta(days=1)
    assert abs(next_due(task, now) - expected) < dt.timedelta(seconds=1)


def test_a_schedule_that_has_not_started_is_next_due_at_its_start_time():
    now = timezone.now()
    start = now + dt.timedelta(days=2)
    assert next_due(make_periodic_task(start_time=start), now) == start


def test_a_one_off_schedule_that_ran_is_never_due_again():
    clocked = ClockedSchedule.objects.create(clocked_time=timezone.now())
    task = make_periodic_task(clocked=clocked, one_off=True, total_run_count=1)
    assert next_due(task, timezone.now()) is None


def test_a_schedule_that_expires_before_its_next_run_is_not_due():
    now = timezone.now()
    task = make_periodic_task(last_run_at=now, expires=now + dt.timedelta(minutes=1))
    assert next_due(task, now) is None
