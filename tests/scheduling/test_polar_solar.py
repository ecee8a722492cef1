"""Solar schedules near the poles, where the sun rises or sets once a year: the preview,
`manage.py schedules next` and beat name only moments the sun does the event, never the
moment Celery's search for it gave up; when it does not happen within the search, there
is no run and the preview says why."""

import datetime as dt
import re
from io import StringIO
from itertools import pairwise

import ephem
import pytest
from celery import schedules
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import SolarSchedule

from apps.scheduling import preview
from apps.scheduling.schedulers import SwitchyardEntry
from project import celery_app
from tests.helpers import make_superuser

from .makers import make_schedule

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 12, 6, 15, 0, tzinfo=dt.UTC)  # polar night in the north
CELERYS_SEARCH_END = dt.datetime(2027, 12, 6, 23, 51, tzinfo=dt.UTC)  # 366 days on


@pytest.fixture
def frozen_now(monkeypatch):
    monkeypatch.setattr(timezone, "now", lambda: NOW)


def make_solar_schedule(event: str, latitude: float, longitude: float = 0):
    sun = SolarSchedule.objects.create(event=event, latitude=latitude, longitude=longitude)
    return make_schedule(f"{event} at {latitude}", solar=sun, last_run_at=NOW)


def sun_crosses_the_events_horizon_at(event: str, latitude: float, moment: dt.datetime) -> bool:
    """Asked of ephem directly: the sun's centre (upper limb at sunrise and sunset) is on
    the event's horizon at `moment`, give or take a few seconds' movement."""
    return abs(sun_height(event, latitude, moment)) < 0.0002  # radians: about 0.01 degrees


def cli_next(name: str, count: int) -> list[str]:
    out = StringIO()
    call_command("schedules", "next", name, "-n", str(count), stdout=out)
    return out.getvalue().splitlines()[1:]


def test_schedules_next_shows_the_sunrise_near_the_north_pole_and_not_the_searchs_end(
    frozen_now,
):
    make_solar_schedule("sunrise", 89.9)
    lines = cli_next("sunrise at 89.9", 4)
    days = [re.search(r"\d{4}-\d\d-\d\d", line)[0] for line in lines]
    assert days[0] == "2027-03-18", lines  # the sun rises there in March, once a year
    assert "2027-12-06" not in days
    assert all(day[5:7] == "03" for day in days), lines


@pytest.mark.parametrize(("event", "latitude"), [("sunrise", 89.9), ("sunset", 90),
                                                 ("dawn_astronomical", 90),
                                                 ("dawn_astronomical", -90)])  # fmt: skip
def test_the_admin_preview_of_a_polar_schedule_shows_only_moments_the_sun_does_the_event(
    client, frozen_now, event, latitude
):
    client.force_login(make_superuser())
    task = make_solar_schedule(event, latitude)
    response = client.get(reverse("admin:django_celery_beat_periodictask_change",
                                  args=[task.pk]))  # fmt: skip
    runs = [row.at for row in response.context["schedule_preview"].runs]
    assert len(runs) == 5
    assert NOW < runs[0] < NOW + dt.timedelta(days=366)
    assert all(sun_crosses_the_events_horizon_at(event, latitude, run) for run in runs), runs


def test_beat_is_not_due_at_the_searchs_end_but_at_the_real_sunrise():
    task = make_solar_schedule("sunrise", 89.9)
    entry = SwitchyardEntry(task, app=celery_app)
    entry.schedule.nowfun = lambda: NOW
    due, next_check = entry.schedule.is_due(NOW)
    assert not due
    fires_at = NOW + dt.timedelta(seconds=next_check)
    assert fires_at.date() == dt.date(2027, 3, 18)
    assert fires_at == preview.due_at(task, NOW)  # beat and the pages: one answer
    assert sun_crosses_the_events_horizon_at("sunrise", 89.9, fires_at)


def test_a_sunrise_that_does_not_happen_within_the_search_has_no_run_anywhere(
    frozen_now, monkeypatch
):
    monkeypatch.setattr(schedules.solar, "max_search_days", 30)  # polar night lasts longer
    task = make_solar_schedule("sunrise", 90)
    assert cli_next(task.name, 3) == ["no runs ahead (the sun does not reach sunrise there "
                                      "within 30 days)"]  # fmt: skip
    entry = SwitchyardEntry(task, app=celery_app)
    entry.schedule.nowfun = lambda: NOW + dt.timedelta(days=31)  # Celery's made-up time, past
    due, next_check = entry.schedule.is_due(NOW)
    assert not due and next_check == preview.NO_RUN_RECHECK
    assert preview.schedule_problem(task, NOW) is None  # not broken: it just has no run yet


def shown_moments(lines: list[str]) -> list[dt.datetime]:
    found = (re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", line) for line in lines)
    return [dt.datetime.fromisoformat(f"{match[0]}+00:00") for match in found]


def sun_height(event: str, latitude: float, moment: dt.datetime) -> float:
    """Asked of ephem directly: radians of the sun's centre (upper limb at sunrise and
    sunset) above the event's horizon at `moment`."""
    solar = schedules.solar(event, latitude, 0)
    place = ephem.Observer()
    place.lat, place.lon, place.pressure = str(latitude), "0", 0
    place.date = moment.astimezone(dt.UTC).replace(tzinfo=None)
    sun = ephem.Sun(place)
    horizon = ephem.degrees(solar._horizons[event])
    return sun.alt + (0 if solar.use_center else sun.radius) - horizon


@pytest.mark.parametrize(("event", "latitude"), [("dawn_astronomical", 85),
                                                 ("sunrise", -89.9),
                                                 ("dawn_astronomical", -89.9)])  # fmt: skip
def test_each_run_near_a_pole_is_the_sun_rising_through_the_horizon_and_never_the_same_one_twice(
    frozen_now, event, latitude
):
    make_solar_schedule(event, latitude)
    runs = shown_moments(cli_next(f"{event} at {latitude}", 8))
    assert len(runs) == 8
    a_minute = dt.timedelta(minutes=1)
    for run in runs:  # below the horizon a minute before, above it a minute after
        assert (
            sun_height(event, latitude, run - a_minute)
            < 0
            < sun_height(event, latitude, run + a_minute)
        ), run
    assert all(later - earlier > dt.timedelta(hours=1) for earlier, later in pairwise(runs))
