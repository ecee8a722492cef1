"""Property tests for the schedule form (the periodic task admin): crontab fields,
intervals, clocked dates and time zones, from hypothesis, through the real admin view.

Whatever is typed, the form either saves exactly what was typed or answers with a
message on the field at fault and writes nothing; it never fails with a 500.
"""

import datetime as dt
import uuid
import zoneinfo

import pytest
from django.test import Client
from django.urls import reverse
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
)
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from apps.scheduling.forms import default_zone, form_data
from apps.scheduling.models import ScheduleOptions
from tests.helpers import make_superuser

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

ADD_URL = reverse("admin:django_celery_beat_periodictask_add")
MODELS = (PeriodicTask, CrontabSchedule, IntervalSchedule, ClockedSchedule, ScheduleOptions)
CRON_FIELDS = {"minute": (0, 59), "hour": (0, 23), "day_of_month": (1, 28),
               "month_of_year": (1, 12), "day_of_week": (0, 6)}  # fmt: skip
ZONES = sorted(zoneinfo.available_timezones() - {"Factory", "localtime"})
property_test = settings(
    max_examples=25, deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)  # fmt: skip


@pytest.fixture
def staff() -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(make_superuser())
    return client


def row_counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in MODELS}


def post(client: Client, **values):
    """Post the add form; return (the saved task or None, the form's errors, row counts
    before, row counts after)."""
    name = f"property {uuid.uuid4().hex}"
    data = form_data(name=name, regtask="apps.demo.tasks.add", **{"param-x": "1"},
                     **{"param-y": "2"}, **values)  # fmt: skip
    before = row_counts()
    response = client.post(ADD_URL, data)
    assert response.status_code in (200, 302), f"{response.status_code} for {values!r}"
    if response.status_code == 302:
        return PeriodicTask.objects.get(name=name), {}, before, row_counts()
    return None, dict(response.context["adminform"].form.errors), before, row_counts()


def refused_on(errors: dict, before: dict, after: dict, *fields: str) -> None:
    assert errors and set(errors) <= set(fields), errors
    assert all(message for messages in errors.values() for message in messages)
    assert after == before, "a refused form wrote rows"


def cron_field(low: int, high: int):
    number = st.integers(low, high).map(str)
    span = st.tuples(st.integers(low, high), st.integers(low, high)).map(
        lambda ab: f"{min(ab)}-{max(ab)}"
    )
    step = st.integers(1, high - low).map(lambda n: f"*/{n}")
    item = st.one_of(number, span, step, st.just("*"))
    return st.lists(item, min_size=1, max_size=3).map(",".join)


valid_crontab = st.fixed_dictionaries({name: cron_field(*bounds)
                                       for name, bounds in CRON_FIELDS.items()})  # fmt: skip
noise = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=30)


@property_test
@given(fields=valid_crontab, zone=st.sampled_from(ZONES))
def test_a_valid_crontab_in_any_zone_is_saved_as_typed(staff, fields, zone):
    task, errors, _, _ = post(staff, kind="crontab", timezone=zone, **fields)
    assert task is not None, errors
    saved = {name: getattr(task.crontab, name) for name in CRON_FIELDS}
    assert saved == fields
    assert str(task.crontab.timezone) == zone
    assert task.crontab.schedule.remaining_estimate(task.crontab.schedule.now()) is not None


@property_test
@given(field=st.sampled_from(sorted(CRON_FIELDS)), value=noise)
def test_any_text_in_a_crontab_field_is_saved_as_typed_or_refused_on_that_field(
    staff, field, value
):
    task, errors, before, after = post(staff, kind="crontab", timezone="UTC", **{field: value})
    if task is None:
        refused_on(errors, before, after, field, "day_of_month")
    else:
        assert getattr(task.crontab, field) == (value.strip() or "*")  # blank: any


@property_test
@given(
    every=st.one_of(st.integers(-(10**12), 2**31 - 1).map(str), noise),
    period=st.one_of(st.sampled_from(["seconds", "minutes", "hours", "days"]), noise),
)
@example(every="0", period="minutes")
def test_any_interval_is_saved_as_typed_or_refused_on_its_fields(staff, every, period):
    task, errors, before, after = post(staff, kind="interval", every=every, period=period)
    if task is None:
        refused_on(errors, before, after, "every", "period")
    else:
        assert (task.interval.every, task.interval.period) == (int(every), period)
        assert task.interval.every >= 1


def test_an_interval_too_large_for_the_database_is_refused_on_every(staff):
    _, errors, before, after = post(staff, kind="interval", every=str(2**31), period="days")
    refused_on(errors, before, after, "every")


@property_test
@given(zone=st.one_of(st.sampled_from(ZONES), noise))
def test_any_time_zone_is_saved_as_typed_or_refused_on_the_zone(staff, zone):
    task, errors, before, after = post(staff, kind="crontab", timezone=zone)
    if task is None:
        refused_on(errors, before, after, "timezone")
    else:
        assert str(task.crontab.timezone) == (zone.strip() or default_zone())
        assert str(task.crontab.timezone) in ZONES


@property_test
@given(moment=st.datetimes(dt.datetime(1900, 1, 1), dt.datetime(2200, 1, 1)),
       zone=st.sampled_from(ZONES))  # fmt: skip
def test_a_clocked_time_is_saved_in_its_zone_if_it_is_ahead_else_refused(staff, moment, zone):
    typed = moment.strftime("%Y-%m-%dT%H:%M")
    task, errors, before, after = post(staff, kind="clocked", clocked_time=typed, timezone=zone)
    if task is None:
        refused_on(errors, before, after, "clocked_time")
    else:
        local = task.clocked.clocked_time.astimezone(zoneinfo.ZoneInfo(zone))
        assert local.strftime("%Y-%m-%dT%H:%M") == typed or local.fold
        assert task.clocked.clocked_time > dt.datetime.now(dt.UTC)


@property_test
@given(text=noise)
def test_any_text_as_a_clocked_time_is_saved_or_refused_on_that_field(staff, text):
    task, errors, before, after = post(staff, kind="clocked", clocked_time=text)
    if task is None:
        refused_on(errors, before, after, "clocked_time")
