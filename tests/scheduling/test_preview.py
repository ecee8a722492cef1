"""Next runs of every schedule kind, beat's rules for a task's upcoming runs, and the words."""

import datetime as dt
import itertools
import zoneinfo
from decimal import Decimal

import pytest
from celery import schedules
from django_celery_beat.clockedschedule import clocked
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)

from apps.scheduling import preview

UTC = dt.UTC
NOW = dt.datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")


def make_task(**fields) -> PeriodicTask:
    """An unsaved task: the preview needs no database."""
    fields.setdefault("enabled", True)
    if not any(fields.get(kind) for kind in ("interval", "crontab", "solar", "clocked")):
        fields["interval"] = IntervalSchedule(every=10, period="minutes")
    return PeriodicTask(name="t", task="apps.demo.tasks.add", **fields)


def crontab(expression: str = "0 3 * * *", zone: str = "UTC") -> CrontabSchedule:
    minute, hour, day_of_month, month_of_year, day_of_week = expression.split()
    return CrontabSchedule(minute=minute, hour=hour, day_of_month=day_of_month,
                           month_of_year=month_of_year, day_of_week=day_of_week,
                           timezone=zoneinfo.ZoneInfo(zone))  # fmt: skip


# next_run_after for each kind ---------------------------------------------------------


def test_an_interval_runs_one_interval_after_the_previous_run_in_real_time():
    every_hour = schedules.schedule(dt.timedelta(hours=1))
    before_fall_back = dt.datetime(2026, 10, 25, 2, 30, tzinfo=BERLIN)  # CEST
    after = preview.next_run_after(every_hour, before_fall_back)
    assert after - before_fall_back == dt.timedelta(hours=1)
    assert after.astimezone(BERLIN).strftime("%H:%M %Z") == "02:30 CET"


def test_a_clocked_schedule_runs_at_its_time_and_then_never():
    at = dt.datetime(2026, 7, 1, 9, tzinfo=UTC)
    assert preview.next_run_after(clocked(at), NOW) == at
    assert preview.next_run_after(clocked(at), at) is None
    assert preview.next_runs(clocked(at), NOW, 5) == [at]


def test_a_solar_schedule_matches_celerys_own_solar_arithmetic():
    sunrise = schedules.solar("sunrise", 52.52, 13.405)
    runs = preview.next_runs(sunrise, NOW, 3)
    probe = schedules.solar("sunrise", 52.52, 13.405, nowfun=lambda: NOW)
    assert runs[0] == NOW + probe.remaining_estimate(NOW)
    assert all(dt.timedelta(hours=23) < b - a < dt.timedelta(hours=25)
               for a, b in itertools.pairwise(runs))  # fmt: skip
    assert all(2 <= run.hour <= 4 for run in runs)  # Berlin summer sunrise is ~03:45 UTC


def test_a_solar_event_that_does_not_happen_for_months_is_still_found():
    # Sunrise at 78 degrees north in June: the sun does not set, so no sunrise till August.
    runs = preview.next_runs(schedules.solar("sunrise", 78.2, 15.6), NOW, 1)
    assert runs and runs[0].month in (8, 9)


def test_a_naive_moment_is_read_as_utc():
    every_minute = schedules.schedule(dt.timedelta(minutes=1))
    naive = NOW.replace(tzinfo=None)
    assert preview.next_run_after(every_minute, naive) == NOW + dt.timedelta(minutes=1)


def test_next_runs_come_back_in_utc():
    runs = preview.next_runs(crontab("0 3 * * *", "Asia/Tokyo").schedule, NOW, 2)
    assert [run.tzinfo for run in runs] == [UTC, UTC]
    assert [run.hour for run in runs] == [18, 18]


# upcoming_runs: beat's rules for a task ------------------------------------------------


def test_an_interval_task_counts_from_its_last_run():
    task = make_task(last_run_at=NOW - dt.timedelta(minutes=4))
    assert preview.upcoming_runs(task, NOW, 2) == [
        NOW + dt.timedelta(minutes=6), NOW + dt.timedelta(minutes=16),
    ]  # fmt: skip


def test_a_task_due_in_the_past_is_shown_as_due_now():
    task = make_task(last_run_at=NOW - dt.timedelta(hours=2))
    assert preview.upcoming_runs(task, NOW, 2) == [NOW, NOW + dt.timedelta(minutes=10)]


def test_a_task_never_run_counts_from_when_it_was_changed():
    task = make_task(date_changed=NOW - dt.timedelta(minutes=1))
    assert preview.upcoming_runs(task, NOW, 1) == [NOW + dt.timedelta(minutes=9)]


def test_a_disabled_task_has_no_upcoming_runs():
    assert preview.upcoming_runs(make_task(enabled=False), NOW) == []


def test_a_one_off_task_runs_once_and_not_again_after_it_ran():
    assert len(preview.upcoming_runs(make_task(one_off=True), NOW)) == 1
    assert preview.upcoming_runs(make_task(one_off=True, total_run_count=1), NOW) == []


def test_a_task_starts_at_its_start_time_and_stops_before_it_expires():
    start = NOW + dt.timedelta(days=1)
    task = make_task(crontab=crontab("0 * * * *"), start_time=start,
                     expires=start + dt.timedelta(hours=2, minutes=30))  # fmt: skip
    assert preview.upcoming_runs(task, NOW, 5) == [
        start, start + dt.timedelta(hours=1), start + dt.timedelta(hours=2),
    ]  # fmt: skip


def test_a_clocked_task_shows_its_one_time():
    at = NOW + dt.timedelta(days=3)
    task = make_task(clocked=ClockedSchedule(clocked_time=at), one_off=True)
    assert preview.upcoming_runs(task, NOW) == [at]


def test_a_crontab_task_follows_the_daylight_saving_rules():
    spring = dt.datetime(2026, 3, 28, 12, tzinfo=UTC)
    task = make_task(crontab=crontab("30 2 * * *", "Europe/Berlin"), last_run_at=spring)
    first = preview.upcoming_runs(task, spring, 1)[0].astimezone(BERLIN)
    assert first.strftime("%m-%d %H:%M %Z") == "03-29 03:00 CEST"


# Words and zones -----------------------------------------------------------------------


@pytest.mark.parametrize(("schedule", "words"), [
    (IntervalSchedule(every=10, period="minutes"), "every 10 minutes"),
    (IntervalSchedule(every=1, period="hours"), "every hour"),
    (crontab("30 2 * * *", "Europe/Berlin"), "At 02:30 (Europe/Berlin)"),
    (crontab("*/15 9-17 * * 1-5"),
     "Every 15 minutes, between 09:00 and 17:59, Monday through Friday (UTC)"),
    (SolarSchedule(event="sunset", latitude=Decimal("52.5"), longitude=Decimal("13.4")),
     "At sunset, latitude 52.5, longitude 13.4 (UTC times)"),
    (ClockedSchedule(clocked_time=dt.datetime(2026, 12, 1, 9, tzinfo=UTC)),
     "Once, at Tue 2026-12-01 09:00 UTC (+00:00)"),
])  # fmt: skip
def test_each_kind_of_schedule_is_described_in_words(schedule, words):
    assert preview.describe(schedule) == words


def test_a_crontab_the_describer_cannot_read_is_shown_as_it_is():
    assert preview.describe_cron("not a cron") == "not a cron"


def test_only_a_crontab_has_a_zone_of_its_own():
    assert preview.schedule_zone(make_task(crontab=crontab(zone="Asia/Tokyo"))) == (
        zoneinfo.ZoneInfo("Asia/Tokyo")
    )  # fmt: skip
    assert preview.schedule_zone(make_task()) is None


def test_a_moment_is_shown_with_its_zone_abbreviation_and_offset():
    moment = dt.datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert preview.format_moment(moment, BERLIN) == "Sun 2026-03-29 03:00 CEST (+02:00)"


def test_the_preview_shows_runs_in_the_schedules_zone_and_the_viewers():
    task = make_task(crontab=crontab("0 9 * * *", "Asia/Tokyo"))
    shown = preview.preview(task, NOW, 2, viewer_zone=BERLIN)
    assert (shown.schedule_zone, shown.viewer_zone) == ("Asia/Tokyo", "Europe/Berlin")
    assert [row.in_schedule_zone[-18:] for row in shown.runs] == ["09:00 JST (+09:00)"] * 2
    assert [row.in_viewer_zone[-19:] for row in shown.runs] == ["02:00 CEST (+02:00)"] * 2
