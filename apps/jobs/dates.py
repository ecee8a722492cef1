"""The dates Switchyard accepts anywhere: 2000-01-01 to 2099-12-31 (UTC), far from the
limits of Python's datetime. The /runs/ date filters use it here; a schedule's dates
(start time, expiry, clocked time, last run) through apps.scheduling.bounds; a Tasks API
task's run_after through apps.djtasks.options.

A wall-clock time its zone skips (the hour its clocks go forward) is no time at all
(`nonexistent_error`): the schedule forms refuse a clocked time in that hour, and the
Tasks API a run_after."""

import datetime as dt

from django.core.exceptions import ValidationError

EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(2099, 12, 31, 23, 59, 59, tzinfo=dt.UTC)


def moment_error(moment) -> str | None:
    """A date or an aware datetime between EARLIEST and LATEST."""
    if isinstance(moment, dt.datetime):
        inside = EARLIEST <= _aware(moment) <= LATEST
    else:
        inside = EARLIEST.date() <= moment <= LATEST.date()
    if not inside:
        return (f"{moment.isoformat()} is out of range: choose a date between "
                f"{EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}")  # fmt: skip
    return None


def nonexistent_error(moment: dt.datetime) -> str | None:
    """A wall-clock time its zone does not have: read with either offset it is another
    time on the clock, so it does not come back the same through UTC."""
    if moment.tzinfo is None:
        return None
    wall = moment.replace(tzinfo=None)
    if moment.astimezone(dt.UTC).astimezone(moment.tzinfo).replace(tzinfo=None) == wall:
        return None
    return (f"{wall:%Y-%m-%d %H:%M} does not exist in {moment.tzinfo}: its clocks skip "
            "that hour (daylight saving time begins); choose a time outside it.")  # fmt: skip


def validate_date(day) -> None:
    """A form field validator (the /runs/ date filters)."""
    error = moment_error(day)
    if error:
        raise ValidationError(error)


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)
