"""Admin actions: run now (recorded as the user's, from admin), enable, disable, duplicate."""

import datetime as dt
import json

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import PeriodicTask, PeriodicTasks

from apps.jobs.models import Run, Source, State
from apps.scheduling import preview
from apps.scheduling.models import Schedule, ScheduleOptions
from tests.helpers import make_superuser, make_user, wait_for
from tests.scheduling.makers import make_interval, make_schedule

database = pytest.mark.django_db
with_worker = pytest.mark.django_db(transaction=True)

LIST_URL = reverse("admin:django_celery_beat_periodictask_changelist")


def act(client, action: str, *tasks: PeriodicTask):
    data = {"action": action, "_selected_action": [t.pk for t in tasks]}
    return client.post(LIST_URL, data, follow=True)


def said(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def root(client):
    user = make_superuser()
    client.force_login(user)
    return user


@database
def test_run_now_records_who_triggered_it_from_admin_with_the_schedule_name(client, root):
    task = make_schedule(queue="reports", priority=3)
    response = act(client, "run_now", task)
    run = Run.objects.get()
    assert said(response) == ["1 run started."]
    assert (run.source, run.requested_by, run.schedule_name) == (Source.ADMIN, root, task.name)
    assert (run.job_name, run.parameters, run.queue) == (task.task, {"x": 2, "y": 3}, "reports")


@database
def test_run_now_sends_the_schedules_execution_options():
    expires = timezone.now() + dt.timedelta(hours=1)
    made = make_schedule(queue="reports", priority=7, expires=expires, routing_key="r")
    task = Schedule.objects.get(pk=made.pk)
    assert task.execution_options() == {
        "queue": "reports", "priority": 7, "routing_key": "r", "expires": expires,
    }  # fmt: skip
    task.expire_seconds, task.expires = 60, None
    assert task.execution_options()["expires"] == 60


@database
def test_run_now_refuses_a_user_who_may_not_run_the_job(client):
    user = make_user("carol")
    user.user_permissions.add(*Permission.objects.filter(codename__endswith="periodictask"))
    client.force_login(user)
    response = act(client, "run_now", make_schedule())
    assert Run.objects.count() == 0
    assert said(response) == ["nightly add: you may not run Add two numbers."]


@database
def test_run_now_refuses_parameters_the_job_no_longer_accepts(client, root):
    task = make_schedule(kwargs=json.dumps({"x": 1, "y": 2, "z": 3}))
    response = act(client, "run_now", task)
    assert Run.objects.count() == 0
    assert said(response) == ["nightly add: z: unknown parameter"]


@database
def test_the_run_now_button_on_the_change_page_starts_a_run_and_returns_there(client, root):
    task = make_schedule()
    url = reverse("admin:django_celery_beat_periodictask_run_now", args=[task.pk])
    response = client.post(url)
    assert response.url == reverse("admin:django_celery_beat_periodictask_change", args=[task.pk])
    assert Run.objects.get().schedule_name == task.name


@database
def test_the_run_now_button_needs_a_post(client, root):
    url = reverse("admin:django_celery_beat_periodictask_run_now", args=[make_schedule().pk])
    assert client.get(url).status_code == 405


@database
def test_enable_and_disable_report_counts_and_tell_beat(client, root):
    on, off = make_schedule("on"), make_schedule("off", enabled=False)
    before = PeriodicTasks.last_change()
    assert said(act(client, "disable", on, off)) == ["1 schedule disabled."]
    assert PeriodicTasks.last_change() > before
    assert said(act(client, "enable", on, off)) == ["2 schedules enabled."]
    assert all(
        PeriodicTask.objects.filter(name__in=["on", "off"]).values_list("enabled", flat=True)
    )


@database
def test_re_enabling_does_not_make_up_the_runs_missed_while_disabled():
    three_days_ago = timezone.now() - dt.timedelta(days=3)
    task = make_schedule(interval=make_interval(10, "minutes"), last_run_at=three_days_ago)
    Schedule.objects.get(pk=task.pk).set_enabled(False)
    Schedule.objects.get(pk=task.pk).set_enabled(True)
    task.refresh_from_db()
    now = timezone.now()
    assert preview.upcoming_runs(task, now, 1)[0] > now + dt.timedelta(minutes=9)


@database
def test_duplicate_makes_a_disabled_copy_with_the_same_schedule_and_options(client, root):
    task = make_schedule(options={"overlap": "skip", "grace_seconds": 30})
    assert said(act(client, "duplicate", task)) == ["1 schedule duplicated (disabled)."]
    copy = PeriodicTask.objects.get(name="nightly add (copy)")
    assert (copy.enabled, copy.crontab, copy.kwargs) == (False, task.crontab, task.kwargs)
    assert ScheduleOptions.objects.get(periodic_task=copy).overlap == "skip"
    act(client, "duplicate", task)
    assert PeriodicTask.objects.filter(name="nightly add (copy) 2").exists()


@database
def test_duplicate_refuses_a_schedule_of_a_job_that_cannot_be_scheduled(client, root):
    bulk = make_schedule("bulk by hand", task="apps.jobs.tasks.bulk_runs",
                         kwargs=json.dumps({"action": "cancel", "query": "state=queued",
                                            "expected": 9}))  # fmt: skip
    assert said(act(client, "duplicate", bulk)) == [
        "bulk by hand: not duplicated: task: Act on many runs acts as the person who starts "
        "it, and a schedule has none: it cannot be scheduled.",
        "0 schedules duplicated (disabled).",
    ]
    assert not PeriodicTask.objects.filter(name__startswith="bulk by hand (copy)").exists()


@with_worker
def test_run_now_runs_the_job_on_a_real_worker(client, celery_worker):
    client.force_login(make_superuser())
    task = make_schedule(kwargs=json.dumps({"x": 20, "y": 22}))
    act(client, "run_now", task)
    run = wait_for(lambda: Run.objects.filter(schedule_name=task.name,
                                              state=State.SUCCEEDED).first())  # fmt: skip
    assert run.source == Source.ADMIN
