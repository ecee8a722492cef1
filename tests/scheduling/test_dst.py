"""Crontab next runs across daylight saving changes, against an independent oracle.

The oracle is croniter with zoneinfo (AND of day-of-month and day-of-week, as Celery
has it), with the one rule where Switchyard, like Vixie cron, differs from croniter: a
job at specific hours runs once, not twice, when the clock falls back. Hypothesis picks
zones from the whole tz database, cron expressions and moments, and moments close to
each zone's own clock changes, where the mistakes live.
"""

import datetime as dt
import functools
import itertools
import zoneinfo

import pytest
from croniter import croniter
from django_celery_beat.tzcrontab import TzAwareCrontab
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.scheduling.preview import DstSafeCrontab, next_run_after, next_runs

UTC = dt.UTC
BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
NEW_YORK = zoneinfo.ZoneInfo("America/New_York")
SYDNEY = zoneinfo.ZoneInfo("Australia/Sydney")
ZONES = sorted(zoneinfo.available_timezones() - {"Factory", "localtime"})
WHOLE_HOUR_DST_ZONES = ["Europe/Berlin", "America/New_York", "Australia/Sydney",
                        "America/Santiago", "Europe/London", "America/Havana",
                        "Asia/Beirut", "Pacific/Auckland", "Europe/Dublin"]  # fmt: skip

property_test = settings(
    max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


def cron(expression: str, zone=BERLIN) -> TzAwareCrontab:
    minute, hour, day_of_month, month_of_year, day_of_week = expression.split()
    return TzAwareCrontab(minute, hour, day_of_week, day_of_month, month_of_year, tz=zone)


def local_runs(expression: str, zone, after: dt.datetime, count: int) -> list[str]:
    runs = next_runs(cron(expression, zone), after, count)
    return [f"{run.astimezone(zone):%m-%d %H:%M %Z}" for run in runs]


# The oracle ---------------------------------------------------------------------------


def oracle_next(expression: str, zone, after: dt.datetime) -> dt.datetime:
    """croniter's next run, less the second pass of a repeated hour for fixed-hour jobs."""
    every_hour = croniter(expression).expanded[1] == ["*"]
    found = croniter(expression, after.astimezone(zone), day_or=False)
    while True:
        moment = found.get_next(dt.datetime).astimezone(UTC)
        if every_hour or not is_second_pass(moment, zone):
            return moment


def is_second_pass(moment: dt.datetime, zone) -> bool:
    local = moment.astimezone(zone)
    return local.fold == 1 and local.replace(fold=0).utcoffset() != local.utcoffset()


def celery_next(expression: str, zone, after: dt.datetime) -> dt.datetime:
    """What Celery's crontab says, used as beat uses it: is_due(tz-aware last_run_at)."""
    schedule = cron(expression, zone)
    schedule.nowfun = lambda: after
    return after.astimezone(UTC) + schedule.remaining_estimate(after.astimezone(zone))


@functools.lru_cache(maxsize=4096)
def clock_changes(zone_name: str, year: int) -> tuple[dt.datetime, ...]:
    """The instants in `year` when the zone's UTC offset changes (weekly probes, bisection)."""
    zone = zoneinfo.ZoneInfo(zone_name)
    probes = [dt.datetime(year, 1, 1, tzinfo=UTC) + dt.timedelta(days=3 * i) for i in range(123)]
    changes = []
    for low, high in itertools.pairwise(probes):
        if low.astimezone(zone).utcoffset() != high.astimezone(zone).utcoffset():
            changes.append(_bisect_change(zone, low, high))
    return tuple(changes)


def _bisect_change(zone, low: dt.datetime, high: dt.datetime) -> dt.datetime:
    before = low.astimezone(zone).utcoffset()
    while high - low > dt.timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(zone).utcoffset() == before:
            low = middle
        else:
            high = middle
    return high.replace(microsecond=0)


# Strategies -----------------------------------------------------------------------------


def field(low: int, high: int) -> st.SearchStrategy[str]:
    number = st.integers(low, high)
    return st.one_of(
        st.just("*"),
        number.map(str),
        st.integers(2, max(2, (high - low) // 2)).map(lambda step: f"*/{step}"),
        # croniter 7 reads a one-value range such as 3-3 as "*"; a plain 3 covers it.
        st.lists(number, min_size=2, max_size=2, unique=True).map(
            lambda ab: f"{min(ab)}-{max(ab)}"
        ),
        st.lists(number, min_size=2, max_size=4, unique=True).map(
            lambda items: ",".join(map(str, sorted(items)))
        ),
    )


expressions = st.tuples(
    field(0, 59),
    field(0, 23),
    st.one_of(st.just("*"), st.just("*"), field(1, 28)),
    st.one_of(st.just("*"), st.just("*"), st.just("*"), field(1, 12)),
    st.one_of(st.just("*"), st.just("*"), field(0, 6)),
).map(" ".join)

zones = st.sampled_from(ZONES)
moments = st.datetimes(
    min_value=dt.datetime(1990, 1, 1), max_value=dt.datetime(2037, 12, 31), timezones=st.just(UTC)
)


@st.composite
def near_a_clock_change(draw) -> tuple[str, dt.datetime]:
    """A zone and a moment within three hours of one of its offset changes."""
    zone = draw(st.sampled_from(ZONES))
    year = draw(st.integers(1995, 2036))
    changes = clock_changes(zone, year)
    if not changes:
        return zone, draw(moments)
    change = draw(st.sampled_from(changes))
    seconds = draw(st.integers(-3 * 3600, 3 * 3600))
    return zone, change + dt.timedelta(seconds=seconds)


# Switchyard's next run against the oracle ---------------------------------------------


@property_test
@given(expression=expressions, zone_name=zones, after=moments)
def test_next_run_matches_the_oracle_in_any_zone_at_any_time(expression, zone_name, after):
    zone = zoneinfo.ZoneInfo(zone_name)
    assert next_run_after(cron(expression, zone), after) == oracle_next(expression, zone, after)


@property_test
@given(expression=expressions, zone_and_moment=near_a_clock_change())
def test_next_runs_match_the_oracle_across_clock_changes(expression, zone_and_moment):
    zone_name, after = zone_and_moment
    zone = zoneinfo.ZoneInfo(zone_name)
    schedule = cron(expression, zone)
    expected, moment = [], after
    for _ in range(6):
        moment = oracle_next(expression, zone, moment)
        expected.append(moment)
    assert next_runs(schedule, after, 6) == expected


@property_test
@given(
    zone_name=st.sampled_from(WHOLE_HOUR_DST_ZONES),
    minute=st.integers(0, 59),
    year=st.integers(2000, 2036),
)
def test_an_hourly_job_runs_every_real_hour_through_every_clock_change(zone_name, minute, year):
    zone = zoneinfo.ZoneInfo(zone_name)
    for change in clock_changes(zone_name, year):
        start = change - dt.timedelta(hours=5)
        runs = next_runs(cron(f"{minute} * * * *", zone), start, 10)
        gaps = {later - earlier for earlier, later in itertools.pairwise(runs)}
        assert gaps == {dt.timedelta(hours=1)}, (change, runs)


@property_test
@given(
    zone_name=st.sampled_from(WHOLE_HOUR_DST_ZONES),
    minute=st.integers(0, 59),
    year=st.integers(2000, 2036),
)
def test_a_daily_job_runs_once_on_every_day_with_a_clock_change(zone_name, minute, year):
    zone = zoneinfo.ZoneInfo(zone_name)
    for change in clock_changes(zone_name, year):
        hour = (change.astimezone(zone) - dt.timedelta(minutes=1)).hour  # the changing hour
        start = change - dt.timedelta(days=2)
        runs = next_runs(cron(f"{minute} {hour} * * *", zone), start, 4)
        days = [run.astimezone(zone).date() for run in runs]
        assert len(set(days)) == len(days) == 4, (change, runs)
        assert all(later - earlier >= dt.timedelta(hours=22)
                   for earlier, later in itertools.pairwise(runs))  # fmt: skip


# Hand-picked cases that the documentation states --------------------------------------


def test_a_0230_job_runs_at_0300_when_the_clock_springs_forward_over_it():
    assert local_runs("30 2 * * *", BERLIN, dt.datetime(2026, 3, 28, 12, tzinfo=UTC), 3) == [
        "03-29 03:00 CEST", "03-30 02:30 CEST", "03-31 02:30 CEST",
    ]  # fmt: skip


def test_a_0230_job_runs_once_at_the_first_0230_when_the_clock_falls_back():
    assert local_runs("30 2 * * *", BERLIN, dt.datetime(2026, 10, 24, 12, tzinfo=UTC), 3) == [
        "10-25 02:30 CEST", "10-26 02:30 CET", "10-27 02:30 CET",
    ]  # fmt: skip


def test_an_hourly_job_runs_in_both_passes_of_the_repeated_hour():
    assert local_runs("0 * * * *", BERLIN, dt.datetime(2026, 10, 24, 22, 30, tzinfo=UTC), 4) == [
        "10-25 01:00 CEST", "10-25 02:00 CEST", "10-25 02:00 CET", "10-25 03:00 CET",
    ]  # fmt: skip


def test_an_hourly_job_skips_the_hour_that_does_not_exist():
    assert local_runs("0 * * * *", NEW_YORK, dt.datetime(2026, 3, 8, 5, 30, tzinfo=UTC), 3) == [
        "03-08 01:00 EST", "03-08 03:00 EDT", "03-08 04:00 EDT",
    ]  # fmt: skip


def test_a_quarter_hourly_job_runs_every_fifteen_real_minutes_when_the_clock_falls_back():
    runs = next_runs(cron("*/15 * * * *", SYDNEY), dt.datetime(2026, 4, 4, 15, tzinfo=UTC), 12)
    gaps = {later - earlier for earlier, later in itertools.pairwise(runs)}
    assert gaps == {dt.timedelta(minutes=15)}


def test_two_runs_in_the_skipped_hour_become_one_run_after_the_gap():
    assert local_runs("0,30 2 * * *", BERLIN, dt.datetime(2026, 3, 28, 12, tzinfo=UTC), 3) == [
        "03-29 03:00 CEST", "03-30 02:00 CEST", "03-30 02:30 CEST",
    ]  # fmt: skip


def test_a_run_is_not_repeated_when_asked_again_from_inside_the_repeated_hour():
    after = dt.datetime(2026, 10, 25, 1, 10, tzinfo=UTC)  # 02:10 CET, the second pass
    assert local_runs("30 2 * * *", BERLIN, after, 1) == ["10-26 02:30 CET"]


def test_a_midnight_job_runs_at_0100_where_midnight_is_skipped():
    santiago = zoneinfo.ZoneInfo("America/Santiago")  # clocks jump from 24:00 to 01:00
    after = dt.datetime(2026, 9, 5, 12, tzinfo=UTC)
    assert local_runs("0 0 * * *", santiago, after, 2) == ["09-06 01:00 -03", "09-07 00:00 -03"]


# What Celery's own crontab does (so we know what the scheduler must correct) ----------


@property_test
@given(expression=expressions, zone_name=zones, after=moments)
def test_celerys_crontab_agrees_with_the_oracle_away_from_clock_changes(
    expression, zone_name, after
):
    zone = zoneinfo.ZoneInfo(zone_name)
    expected = oracle_next(expression, zone, after)
    changes = clock_changes(zone_name, after.year) + clock_changes(zone_name, after.year + 1)
    if any(after - dt.timedelta(days=1) <= change <= expected for change in changes):
        return  # Celery's known daylight saving differences are pinned below
    assert celery_next(expression, zone, after) == expected


def test_celerys_crontab_skips_the_repeated_hour_for_an_hourly_job():
    """Celery 5.7 finding: 02:00 CEST, then 03:00 CET, two real hours apart."""
    after = dt.datetime(2026, 10, 25, 0, 0, tzinfo=UTC)  # 02:00 CEST
    celery = celery_next("0 * * * *", BERLIN, after)
    ours = next_run_after(cron("0 * * * *"), after)
    assert celery - after == dt.timedelta(hours=2)
    assert ours - after == dt.timedelta(hours=1)


def test_celerys_crontab_runs_a_skipped_0230_job_at_0330():
    """Celery 5.7 finding: reads 02:30 with the old offset; cron runs it at 03:00."""
    after = dt.datetime(2026, 3, 28, 12, tzinfo=UTC)
    celery = celery_next("30 2 * * *", BERLIN, after).astimezone(BERLIN)
    ours = next_run_after(cron("30 2 * * *"), after).astimezone(BERLIN)
    assert (celery.hour, celery.minute) == (3, 30)
    assert (ours.hour, ours.minute) == (3, 0)


@pytest.mark.parametrize("expression", ["30 2 * * *", "0 2 * * *", "15 1-3 * * *"])
def test_celerys_crontab_runs_a_fixed_hour_job_once_when_the_clock_falls_back(expression):
    after = dt.datetime(2026, 10, 24, 12, tzinfo=UTC)
    celery, ours, moment = [], next_runs(cron(expression), after, 4), after
    for _ in range(4):
        moment = celery_next(expression, BERLIN, moment)
        celery.append(moment)
    assert celery == ours


# The corrected crontab beat can use -------------------------------------------------------


def at(moment: dt.datetime, expression: str, zone=BERLIN) -> DstSafeCrontab:
    schedule = DstSafeCrontab.of(cron(expression, zone))
    schedule.nowfun = lambda: moment
    return schedule


def test_the_dst_safe_crontab_is_due_in_the_second_pass_of_the_repeated_hour():
    first_two = dt.datetime(2026, 10, 25, 0, 0, tzinfo=UTC)  # 02:00 CEST
    second_two = dt.datetime(2026, 10, 25, 1, 0, tzinfo=UTC)  # 02:00 CET
    assert at(second_two, "0 * * * *").is_due(first_two) == (True, 3600)
    stock = cron("0 * * * *")
    stock.nowfun = lambda: second_two
    assert not stock.is_due(first_two.astimezone(BERLIN)).is_due  # what Celery would do


def test_the_dst_safe_crontab_waits_until_the_next_run():
    last = dt.datetime(2026, 3, 28, 12, tzinfo=UTC)
    now = dt.datetime(2026, 3, 29, 0, 30, tzinfo=UTC)  # 01:30 CET; 02:30 runs at 03:00 CEST
    due, remaining = at(now, "30 2 * * *").is_due(last)
    assert (due, remaining) == (False, 30 * 60)


def test_the_dst_safe_crontab_pickles_as_itself():
    import pickle

    schedule = pickle.loads(pickle.dumps(DstSafeCrontab.of(cron("30 2 * * *"))))
    assert isinstance(schedule, DstSafeCrontab)
    assert schedule.tz == BERLIN
