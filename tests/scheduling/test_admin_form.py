"""The periodic task admin form: typed parameters, each schedule kind, errors, nothing saved."""

import datetime as dt
import json

import pytest
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)

from apps.scheduling.forms import form_data
from apps.scheduling.models import ScheduleOptions
from tests.helpers import make_superuser
from tests.scheduling.makers import make_crontab, make_schedule

pytestmark = pytest.mark.django_db

ADD_URL = reverse("admin:django_celery_beat_periodictask_add")
MODELS = (PeriodicTask, CrontabSchedule, IntervalSchedule, SolarSchedule, ClockedSchedule,
          ScheduleOptions)  # fmt: skip


@pytest.fixture
def staff(client):
    client.force_login(make_superuser())
    return client


def row_counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in MODELS}


def add_data(**values) -> dict:
    values.setdefault("name", "nightly add")
    values.setdefault("regtask", "apps.demo.tasks.add")
    values.setdefault("param-x", "2")
    values.setdefault("param-y", "3")
    return form_data(**values)


def post_invalid(client, url: str = ADD_URL, **values) -> dict:
    """Post the form, expect it refused with nothing written; return its errors."""
    before = row_counts()
    response = client.post(url, add_data(**values))
    assert response.status_code == 200, "the form was accepted"
    assert row_counts() == before
    return response.context["adminform"].form.errors


def change_url(task: PeriodicTask) -> str:
    return reverse("admin:django_celery_beat_periodictask_change", args=[task.pk])


# Accepted -----------------------------------------------------------------------------


def test_a_crontab_schedule_for_a_catalog_job_stores_its_typed_parameters(staff):
    response = staff.post(ADD_URL, add_data(minute="30", hour="2", timezone="Europe/Berlin",
                                            overlap="skip", grace_seconds="60"))  # fmt: skip
    assert response.status_code == 302
    task = PeriodicTask.objects.get(name="nightly add")
    assert task.task == "apps.demo.tasks.add"
    assert json.loads(task.kwargs) == {"x": 2, "y": 3}
    assert json.loads(task.args) == []
    assert (task.crontab.minute, task.crontab.hour, str(task.crontab.timezone)) == (
        "30", "2", "Europe/Berlin",
    )  # fmt: skip
    assert (task.options.overlap, task.options.grace_seconds) == ("skip", 60)


def test_an_interval_schedule_reuses_an_existing_interval_row(staff):
    existing = IntervalSchedule.objects.create(every=15, period="minutes")
    staff.post(ADD_URL, add_data(kind="interval", every="15", period="minutes"))
    assert PeriodicTask.objects.get(name="nightly add").interval == existing
    assert IntervalSchedule.objects.filter(every=15, period="minutes").count() == 1


def test_a_solar_schedule_is_saved_with_its_event_and_place(staff):
    staff.post(ADD_URL, add_data(kind="solar", event="sunrise", latitude="52.52",
                                 longitude="13.405"))  # fmt: skip
    solar = PeriodicTask.objects.get(name="nightly add").solar
    assert (solar.event, float(solar.latitude), float(solar.longitude)) == (
        "sunrise",
        52.52,
        13.405,
    )


def test_a_clocked_schedule_is_read_in_its_time_zone_and_runs_once(staff):
    staff.post(ADD_URL, add_data(kind="clocked", clocked_time="2036-12-01T09:00",
                                 timezone="Europe/Berlin"))  # fmt: skip
    task = PeriodicTask.objects.get(name="nightly add")
    assert task.one_off
    assert task.clocked.clocked_time == dt.datetime(2036, 12, 1, 8, 0, tzinfo=dt.UTC)


def test_a_task_outside_the_catalog_keeps_its_raw_json_arguments(staff):
    response = staff.post(ADD_URL, add_data(regtask="apps.demo.tasks.mul", args="[6, 7]",
                                            kwargs="{}"))  # fmt: skip
    assert response.status_code == 302
    task = PeriodicTask.objects.get(name="nightly add")
    assert (task.task, json.loads(task.args)) == ("apps.demo.tasks.mul", [6, 7])


def test_changing_the_schedule_does_not_change_a_schedule_row_other_tasks_share(staff):
    shared = make_crontab("0 3 * * *")
    first = make_schedule("first", crontab=shared)
    make_schedule("second", crontab=shared)
    data = add_data(name="first", minute="45", hour="4", timezone="UTC")
    assert staff.post(change_url(first), data).status_code == 302
    first.refresh_from_db()
    shared.refresh_from_db()
    assert (first.crontab.minute, first.crontab.hour) == ("45", "4")
    assert (shared.minute, shared.hour) == ("0", "3")
    assert PeriodicTask.objects.get(name="second").crontab == shared


def test_the_change_form_shows_the_stored_parameters_in_the_typed_fields(staff):
    task = make_schedule(kwargs=json.dumps({"x": 40, "y": 2}))
    form = staff.get(change_url(task)).context["adminform"].form
    assert form["param-x"].value() == 40
    assert form["param-y"].value() == 2
    assert form["kind"].value() == "crontab"
    assert form["regtask"].value() == "apps.demo.tasks.add"


def test_the_add_form_prefilled_from_a_run_shows_that_jobs_fields():
    from apps.scheduling.forms import ScheduleTaskForm

    form = ScheduleTaskForm(initial={"task": "apps.demo.tasks.add", "kwargs": '{"x": 5}'})
    assert form["regtask"].value() == "apps.demo.tasks.add"
    assert form["param-x"].value() == 5


# Refused, nothing saved ------------------------------------------------------------------


def test_an_interval_of_zero_is_an_error_on_every(staff):
    errors = post_invalid(staff, kind="interval", every="0", period="minutes")
    assert list(errors) == ["every"]
    assert "at least 1" in errors["every"][0]


@pytest.mark.parametrize(("field", "value"), [
    ("minute", "61"), ("hour", "24"), ("day_of_month", "0"), ("month_of_year", "13"),
    ("day_of_week", "8"), ("minute", "*/0"), ("hour", "banana"),
    ("minute", "\u0661"), ("hour", "\uff11"),  # digits, but not 0-9: Arabic-Indic, full-width
])  # fmt: skip
def test_an_invalid_crontab_field_is_an_error_on_that_field(staff, field, value):
    errors = post_invalid(staff, **{field: value})
    assert list(errors) == [field]


def test_a_day_that_never_comes_is_an_error_on_the_day_of_month(staff):
    errors = post_invalid(staff, day_of_month="31", month_of_year="2")
    assert list(errors) == ["day_of_month"]


def test_a_missing_parameter_is_an_error_on_its_field(staff):
    errors = post_invalid(staff, **{"param-y": ""})
    assert list(errors) == ["param-y"]


def test_a_parameter_of_the_wrong_type_is_an_error_on_its_field(staff):
    errors = post_invalid(staff, **{"param-x": "two"})
    assert list(errors) == ["param-x"]


def test_an_unknown_task_is_an_error_on_the_task_field(staff):
    errors = post_invalid(staff, regtask="", task="apps.nowhere.tasks.vanish")
    assert list(errors) == ["task"]
    assert "Unknown task" in errors["task"][0]


BULK_VALUES = {"param-action": "cancel", "param-query": "state=queued", "param-expected": "9"}


def test_a_job_that_acts_as_its_starter_cannot_be_scheduled(staff):
    errors = post_invalid(staff, regtask="apps.jobs.tasks.bulk_runs", **BULK_VALUES)
    assert errors == {"task": ["Act on many runs acts as the person who starts it, and a "
                               "schedule has none: it cannot be scheduled."]}  # fmt: skip


def test_a_solar_schedule_without_a_place_is_an_error_on_the_missing_fields(staff):
    errors = post_invalid(staff, kind="solar", event="sunset", latitude="")
    assert set(errors) == {"latitude", "longitude"}


def test_a_clocked_time_in_the_past_is_refused(staff):
    errors = post_invalid(staff, kind="clocked", clocked_time="2001-01-01T09:00")
    assert list(errors) == ["clocked_time"]


def test_a_clocked_time_its_zone_skips_is_refused_on_the_field(staff):
    errors = post_invalid(staff, kind="clocked", clocked_time="2037-03-29T02:30",
                          timezone="Europe/Berlin")  # fmt: skip
    assert list(errors) == ["clocked_time"]
    assert "does not exist in Europe/Berlin" in errors["clocked_time"][0]


def test_raw_keyword_arguments_must_be_a_json_object(staff):
    errors = post_invalid(staff, regtask="apps.demo.tasks.mul", kwargs="[1, 2]")
    assert list(errors) == ["kwargs"]


NOT_STORABLE = {
    "NaN": "NaN",
    "1e309": "1e309",
    "-Infinity": "-Infinity",
    "lone surrogate": '"\\ud800"',
    "deep": "[" * 3000 + "]" * 3000,
}


@pytest.mark.parametrize("value", NOT_STORABLE.values(), ids=NOT_STORABLE.keys())
def test_raw_arguments_no_run_record_can_store_are_an_error_on_their_field(staff, value):
    """Saved before, then beat sent them every time with no run record (and "run now"
    was a 500); a deep array was a 500 at once."""
    errors = post_invalid(staff, regtask="apps.demo.tasks.mul", args=f"[{value}, 2]",
                          kwargs="{}")  # fmt: skip
    assert list(errors) == ["args"]
    errors = post_invalid(staff, regtask="apps.demo.tasks.mul", args="[]",
                          kwargs=f'{{"x": {value}, "y": 2}}')  # fmt: skip
    assert list(errors) == ["kwargs"]


TALLY = "apps.demo.tasks_api.tasks.tally"
NOT_STORABLE_JSON = {
    "NaN": "NaN",
    "1e309": '{"a": 1e309}',
    "lone surrogate": '"\\ud800"',
    "deep": "[" * 3000 + "]" * 3000,
}


@pytest.mark.parametrize("text", NOT_STORABLE_JSON.values(), ids=NOT_STORABLE_JSON.keys())
def test_a_json_parameter_no_run_record_can_store_is_an_error_on_its_field(staff, text):
    errors = post_invalid(staff, regtask=TALLY, **{"param-x": None, "param-y": None,
                                                  "param-counts": text})  # fmt: skip
    assert list(errors) == ["param-counts"]


def test_an_alert_recipient_must_be_an_email_address(staff):
    errors = post_invalid(staff, alert_recipients="ops@example.com, not-an-address")
    assert list(errors) == ["alert_recipients"]


def test_an_expiry_time_and_expiry_seconds_together_are_an_error_on_the_seconds(staff):
    errors = post_invalid(staff, expires_0="2036-01-01", expires_1="00:00", expire_seconds="60")
    assert list(errors) == ["expire_seconds"]


def test_a_missing_task_is_an_error_on_the_task_field(staff):
    errors = post_invalid(staff, regtask="", task="")
    assert list(errors) == ["task"]


def test_a_taken_name_is_an_error_on_the_name(staff):
    make_schedule("nightly add")
    errors = post_invalid(staff)
    assert list(errors) == ["name"]


def test_a_refused_change_leaves_the_task_as_it_was(staff):
    task = make_schedule(kwargs=json.dumps({"x": 1, "y": 1}))
    before = (task.crontab_id, task.kwargs, task.date_changed)
    post_invalid(staff, url=change_url(task), **{"param-x": "7", "minute": "99"})
    task.refresh_from_db()
    assert (task.crontab_id, task.kwargs, task.date_changed) == before


def test_the_form_keeps_working_without_a_schedule_error_on_top(staff):
    errors = post_invalid(staff, kind="interval", every="")
    assert "__all__" not in errors


def test_a_clocked_task_edited_after_its_time_keeps_its_time(staff):
    past = (timezone.now() - dt.timedelta(days=1)).replace(second=0, microsecond=0)
    task = make_schedule(clocked=ClockedSchedule.objects.create(clocked_time=past), one_off=True)
    data = add_data(
        kind="clocked", clocked_time=timezone.localtime(past).strftime("%Y-%m-%dT%H:%M")
    )
    assert staff.post(change_url(task), data).status_code == 302


# Where it is sent ---------------------------------------------------------------------

NOT_A_BROKER_NAME = (
    "cannot be a name on the broker: at most 200 characters, and no control characters."
)


@pytest.mark.parametrize(("field", "value"), [
    ("queue", "no such\tqueue\x7f"), ("queue", "\x1b[31mred"),
    ("exchange", "x\ny"), ("routing_key", "r\x01"),
])  # fmt: skip
def test_a_queue_exchange_or_routing_key_no_broker_name_could_be_is_refused_on_its_field(
    staff, field, value
):
    errors = post_invalid(staff, **{field: value})
    label = field.replace("_", " ").capitalize()
    assert errors == {field: [f"{label} {value[:60]!r} {NOT_A_BROKER_NAME}"]}


def test_a_well_formed_queue_no_worker_is_configured_for_is_taken(staff):
    """A worker may be started for any queue (`celery worker -Q reports-eu`)."""
    response = staff.post(ADD_URL, add_data(queue="reports-eu", exchange="reports",
                                            routing_key="reports.eu"))  # fmt: skip
    assert response.status_code == 302
    task = PeriodicTask.objects.get(name="nightly add")
    assert (task.queue, task.exchange, task.routing_key) == ("reports-eu", "reports", "reports.eu")
