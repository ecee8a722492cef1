"""The dates Switchyard accepts anywhere: 2000-01-01 to 2099-12-31 (UTC), far from the
limits of Python's datetime. The /runs/ date filters use it here; a schedule's dates
(start time, expiry, clocked time, last run) through apps.scheduling.bounds."""

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


def validate_date(day) -> None:
    """A form field validator (the /runs/ date filters)."""
    error = moment_error(day)
    if error:
        raise ValidationError(error)


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)
