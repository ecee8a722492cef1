"""save_schedule: the one way a schedule is checked and written (the admin and the CLI)."""

import json

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from apps.scheduling import forms
from apps.scheduling.forms import form_data
from apps.scheduling.models import ScheduleOptions
from apps.scheduling.saving import ScheduleError, save_schedule
from tests.helpers import make_user
from tests.scheduling.test_admin_permissions import make_planner

pytestmark = pytest.mark.django_db


def every_ten_minutes(**fields) -> IntervalSchedule:
    return IntervalSchedule(**{"every": 10, "period": "minutes", **fields})


def make_task(name="tidy", task="apps.demo.tasks.add", headers="{}", **params) -> PeriodicTask:
    params = params or {"x": "1", "y": "2"}
    return PeriodicTask(name=name, task=task, kwargs=json.dumps(params), headers=headers)


def test_it_saves_the_schedule_its_parameters_and_options_at_once():
    task = save_schedule(make_task(x="2", y="3"), every_ten_minutes(), {"grace_seconds": 60})
    task.refresh_from_db()
    assert (task.interval.every, task.interval.period, task.kwargs) == (
        10, "minutes", '{"x": 2, "y": 3}',
    )  # fmt: skip
    assert (task.options.grace_seconds, task.options.overlap) == (60, "allow")


def test_options_not_given_take_the_models_defaults():
    task = save_schedule(make_task(), every_ten_minutes(), {})
    assert (task.options.grace_seconds, task.options.alert_recipients) == (300, "")


def test_an_equal_schedule_row_is_shared_not_copied():
    stored = IntervalSchedule.objects.get_or_create(every=10, period="minutes")[0]
    rows = IntervalSchedule.objects.count()
    task = save_schedule(make_task(), every_ten_minutes(), {})
    assert task.interval_id == stored.pk
    assert IntervalSchedule.objects.count() == rows


@pytest.mark.parametrize(("task", "row", "options", "field"), [
    (make_task, lambda: every_ten_minutes(every=3000000, period="days"), {}, "every"),
    (make_task, every_ten_minutes, {"grace_seconds": 99999999999999}, "grace_seconds"),
    (make_task, every_ten_minutes, {"alert_recipients": "ops@example.com\r\nBcc: x@y.z"},
     "alert_recipients"),
    (lambda: make_task(x="two", y="3"), every_ten_minutes, {}, "param-x"),
    (lambda: make_task(name="two\nlines"), every_ten_minutes, {}, "name"),
])  # fmt: skip
def test_bad_input_names_the_field_and_writes_nothing(task, row, options, field):
    rows = IntervalSchedule.objects.count()
    with pytest.raises(ScheduleError) as refused:
        save_schedule(task(), row(), options)
    assert list(refused.value.errors) == [field]
    assert not PeriodicTask.objects.filter(name__startswith="t").exists()
    assert not ScheduleOptions.objects.filter(periodic_task__name__startswith="t").exists()
    assert IntervalSchedule.objects.count() == rows


def test_a_user_may_schedule_only_a_job_they_may_run():
    alice = make_user("alice", jobs=("apps.demo.tasks.add",))
    save_schedule(make_task("mine"), every_ten_minutes(), {}, user=alice)
    theirs = make_task("theirs", "apps.maintenance.tasks.run_command", command="check")
    with pytest.raises(ScheduleError) as refused:
        save_schedule(theirs, every_ten_minutes(), {}, user=alice)
    assert "may not run" in refused.value.one_line()
    assert list(PeriodicTask.objects.filter(name__in=["mine", "theirs"]).values_list(
        "name", flat=True)) == ["mine"]  # fmt: skip


# The admin saves through it ----------------------------------------------------------------

ADD_URL = reverse("admin:django_celery_beat_periodictask_add")
RUN_COMMAND = "apps.maintenance.tasks.run_command"


@pytest.fixture
def adder(client):
    client.force_login(make_planner("adder", jobs=("apps.demo.tasks.add",)))
    return client


def admin_errors(client, **values) -> dict:
    data = form_data(**{"name": "tidy", "regtask": "apps.demo.tasks.add", "param-x": "1",
                        "param-y": "2", **values})  # fmt: skip
    response = client.post(ADD_URL, data)
    assert response.status_code == 200, "the admin accepted it"
    assert not PeriodicTask.objects.filter(name="tidy").exists()
    return response.context["adminform"].form.errors


@pytest.mark.parametrize(("admin_values", "task", "options", "field"), [
    ({"regtask": RUN_COMMAND, "param-command": "check"},
     lambda: make_task(task=RUN_COMMAND, command="check"), {}, "task"),
    ({"alert_recipients": "ops@example.com, nobody"}, make_task,
     {"alert_recipients": "ops@example.com, nobody"}, "alert_recipients"),
    ({"headers": "[1, 2]"}, lambda: make_task(headers="[1, 2]"), {}, "headers"),
])  # fmt: skip
def test_the_admin_refuses_what_save_schedule_refuses_with_its_message(
    adder, admin_values, task, options, field
):
    with pytest.raises(ScheduleError) as refused:
        save_schedule(
            task(), every_ten_minutes(), options, user=User.objects.get(username="adder")
        )
    assert admin_errors(adder, **admin_values)[field] == refused.value.errors[field]


def test_the_admins_save_is_save_schedule(adder, monkeypatch):
    calls = []

    def spy(task, row, options, *, user=None):
        calls.append((task.name, row.every, options["grace_seconds"], user.username))
        return save_schedule(task, row, options, user=user)

    monkeypatch.setattr(forms, "save_schedule", spy)
    data = form_data(name="tidy", regtask="apps.demo.tasks.add", kind="interval", every="10",
                     period="minutes", grace_seconds="60", **{"param-x": "1",
                     "param-y": "2"})  # fmt: skip
    assert adder.post(ADD_URL, data).status_code == 302
    assert calls == [("tidy", 10, 60, "adder")]
    assert PeriodicTask.objects.get(name="tidy").options.grace_seconds == 60
