"""The bounds of a schedule's values: declared once, checked at every door.

The admin form and `manage.py schedules add` refuse a value out of these bounds with a
message naming the field (saving.schedule_errors calls the `*_error` functions). Rows
that got into the database some other way (by hand, an older version, another tool) are checked
with `row_problem`: beat skips such a schedule (logged once), the admin shows it as
broken and the alert sweep raises an incident (preview.schedule_problem adds "and its
next run can be computed").

- an interval: 1 second to 10 years, whatever the period;
- a grace period: 0 to 7 days;
- every date (start time, expiry, clocked time, last run): from 2000-01-01 to
  2099-12-31 (UTC), the range apps.jobs.dates gives the whole site;
- a name: no control characters (a CR/LF would break alert e-mail subjects);
- args, kwargs and headers: JSON as apps/jobs/json_values.py reads it (no NaN, no
  1e309, no lone surrogate: no run record could store them).
"""

from __future__ import annotations

import datetime as dt
import json
import unicodedata
from decimal import Decimal, InvalidOperation

from apps.jobs import json_values  # what a JSON argument may be
from apps.jobs.dates import moment_error  # the site-wide date range

MIN_INTERVAL = dt.timedelta(seconds=1)
MAX_INTERVAL = dt.timedelta(days=3650)
MAX_GRACE_SECONDS = 7 * 24 * 3600
MAX_PRIORITY = 255
MAX_RUN_COUNT = 2**31 - 2  # a 32-bit column on PostgreSQL; beat adds one per run
PERIOD_SECONDS = {"days": 86400, "hours": 3600, "minutes": 60, "seconds": 1,
                  "microseconds": Decimal("0.000001")}  # fmt: skip


# One value each: a message, or None when it is fine --------------------------------------


def interval_error(every, period: str) -> str | None:
    if period not in PERIOD_SECONDS:
        return f"unknown period {period!r}"
    try:
        seconds = Decimal(every) * PERIOD_SECONDS[period]
    except (TypeError, ValueError, InvalidOperation):
        return f"{every!r} is not a number"
    if not MIN_INTERVAL.total_seconds() <= seconds <= MAX_INTERVAL.total_seconds():
        return (f"every {every} {period} is out of range: runs must be between 1 second "
                "and 10 years apart")  # fmt: skip
    return None


def grace_error(seconds) -> str | None:
    if not isinstance(seconds, int) or not 0 <= seconds <= MAX_GRACE_SECONDS:
        return (f"{seconds!r} s is out of range: a grace period is between 0 and "
                f"{MAX_GRACE_SECONDS} s (7 days)")  # fmt: skip
    return None


def name_error(name: str) -> str | None:
    bad = sorted({char for char in name if unicodedata.category(char) in {"Cc", "Cf", "Zl", "Zp"}})
    if bad:
        shown = ", ".join(f"U+{ord(char):04X}" for char in bad)
        return f"A name cannot contain control characters (found {shown})."
    return None


def one_line(text: str) -> str:
    """Text fit for one header line: control characters become spaces."""
    return "".join(" " if unicodedata.category(c) in {"Cc", "Cf", "Zl", "Zp"} else c for c in text)


# Stored values no field can read ------------------------------------------------------


class UnknownZone(dt.tzinfo):
    """What a crontab's stored time zone reads as when no zone has that name.

    django-timezone-field raises while *reading* such a row (an unknown name, a key
    zoneinfo refuses such as '/UTC' or '../x', or none at all), which would stop every
    query that loads it (the schedule list, beat's reload, the alert sweep). Read as
    this instead, the row loads; any time computed in it raises, so the schedule is
    broken (row_problem names it) and beat skips it.
    """

    def __init__(self, name: str):
        self.name = name

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"UnknownZone({self.name!r})"

    def utcoffset(self, moment):
        raise ValueError(f"unknown time zone {self.name!r}")

    dst = tzname = utcoffset


class Unreadable:
    """What a schedule row's stored number or date reads as when the database column
    holds something the field cannot convert (SQLite keeps what it is given: a latitude
    'abc' or infinite, a clocked time 'garbage', which sqlite3 itself reads as None). As
    with UnknownZone, the row loads and row_problem names the value, instead of every
    query that loads the row failing. `raw` is what the driver gave, if anything."""

    __slots__ = ("raw",)

    def __init__(self, raw):
        self.raw = raw

    def __str__(self) -> str:
        return "unreadable" if self.raw is None else str(self.raw)

    def __repr__(self) -> str:
        return f"Unreadable({self.raw!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Unreadable) and repr(other.raw) == repr(self.raw)

    def __hash__(self) -> int:
        return hash(repr(self.raw))


def read_stored_schedules_leniently() -> None:
    """Let a schedule row whose stored values cannot be read load anyway (apps.ready):
    a crontab's time zone reads as UnknownZone, a solar row's latitude or longitude and
    a clocked time as Unreadable. Every page, command and beat then finds the schedule
    broken (row_problem) rather than failing on the query."""
    _read_unknown_zones_leniently()
    _read_unconvertible_values_leniently()


def _read_unknown_zones_leniently() -> None:
    from django.core.exceptions import ValidationError
    from django_celery_beat.models import CrontabSchedule

    field = CrontabSchedule._meta.get_field("timezone")
    strict_from_db, strict_to_python = field.from_db_value, field.to_python

    def from_db_value(value, *args):
        try:
            zone = strict_from_db(value, *args)
        except (ValidationError, ValueError):  # zoneinfo's refusal of a key is a ValueError
            return UnknownZone(str(value))
        return UnknownZone("") if zone is None else zone  # the column is NOT NULL, no blank

    def to_python(value):  # the field's descriptor converts on every assignment
        return value if isinstance(value, UnknownZone) else strict_to_python(value)

    field.from_db_value, field.to_python = from_db_value, to_python


def _read_unconvertible_values_leniently() -> None:
    """The database backend's converters (SQLite's for decimals and dates) run before the
    field's own: they are wrapped, for these columns only, on each backend in use."""
    from django.db import connections
    from django_celery_beat.models import ClockedSchedule, SolarSchedule

    fields = {id(model._meta.get_field(name)) for model, name in (
        (SolarSchedule, "latitude"), (SolarSchedule, "longitude"),
        (ClockedSchedule, "clocked_time"))}  # fmt: skip
    for operations in {type(connections[alias].ops) for alias in connections}:
        if not getattr(operations, "_switchyard_lenient", False):
            operations.get_db_converters = _lenient_converters(operations.get_db_converters,
                                                               fields)  # fmt: skip
            operations._switchyard_lenient = True
    strict_str = ClockedSchedule.__str__

    def clocked_str(row) -> str:  # its own __str__ does date arithmetic on the value
        moment = row.clocked_time
        return str(moment) if isinstance(moment, Unreadable) else strict_str(row)

    ClockedSchedule.__str__ = clocked_str


def _lenient_converters(strict, fields: set[int]):
    def get_db_converters(self, expression):
        converters = strict(self, expression)
        if id(getattr(expression, "output_field", None)) not in fields:
            return converters
        return [_lenient(converter) for converter in converters]

    return get_db_converters


def _lenient(converter):
    def convert(value, expression, connection):
        if value is None and not expression.output_field.null:  # the driver gave up on it
            return Unreadable(None)
        try:
            return converter(value, expression, connection)
        except (TypeError, ValueError, ArithmeticError, AttributeError):
            return Unreadable(value)

    return convert


# A stored row: what beat reads, then Switchyard's options ----------------------------------


def beat_problem(task) -> str | None:
    """Why beat cannot use this stored PeriodicTask as it is, or None.

    Reads only the row and its schedule (select_related keeps it one query per page).
    """
    for check in (_schedule_problem, _dates_problem, sending_problem):
        problem = check(task)
        if problem:
            return problem
    return None


def sending_problem(task) -> str | None:
    """What stops sending the task's message at all (beat, or "run now"): its JSON
    arguments and headers, and its execution options."""
    return _json_problem(task) or _options_problem(task)


def row_problem(task) -> str | None:
    """beat_problem, then the ScheduleOptions row (the grace period alerts use)."""
    problem = beat_problem(task)
    if problem:
        return problem
    options = _schedule_options(task)
    if options is not None:
        error = grace_error(options.grace_seconds)
        return f"grace_seconds: {error}" if error else None
    return None


def _schedule_problem(task) -> str | None:
    kinds = [kind for kind in ("interval", "crontab", "solar", "clocked")
             if getattr(task, kind) is not None]  # fmt: skip
    if len(kinds) != 1:
        return "it must have exactly one schedule (interval, crontab, solar or clocked)"
    row = getattr(task, kinds[0])
    unreadable = _unreadable_problem(kinds[0], row)
    if unreadable:
        return unreadable
    if kinds[0] == "interval":
        error = interval_error(row.every, row.period)
        return f"interval: {error}" if error else None
    if kinds[0] == "clocked":
        error = moment_error(row.clocked_time)
        return f"clocked time: {error}" if error else None
    if kinds[0] == "solar":
        return _solar_problem(row)
    if isinstance(row.timezone, UnknownZone):
        return f"crontab timezone: unknown time zone {row.timezone.name!r}"
    return None  # a crontab's fields are checked by computing it (preview.schedule_problem)


def _unreadable_problem(kind: str, row) -> str | None:
    for field in row._meta.concrete_fields:
        value = getattr(row, field.attname)
        if isinstance(value, Unreadable):
            shown = "" if value.raw is None else f" {str(value)!r}"
            return f"{kind} {field.name}: the stored value{shown} cannot be read"
    return None


def _solar_problem(row) -> str | None:
    if not -90 <= row.latitude <= 90 or not -180 <= row.longitude <= 180:
        return f"solar: latitude {row.latitude}, longitude {row.longitude} is not a place on Earth"
    return None


def _dates_problem(task) -> str | None:
    for field in ("start_time", "expires", "last_run_at"):
        moment = getattr(task, field)
        error = moment_error(moment) if moment is not None else None
        if error:
            return f"{field}: {error}"
    return None


def _json_problem(task) -> str | None:
    """Arguments and headers that are JSON by the rule of what may be stored and sent
    (apps/jobs/json_values.py): a row written by hand or by an older version may hold
    NaN, 1e309 or a lone surrogate, which no run record can store."""
    for field, kind in (("args", list), ("kwargs", dict), ("headers", dict)):
        try:
            value = json_values.loads(getattr(task, field) or ("[]" if kind is list else "{}"))
        except json_values.NotStorable as error:
            return f"{field}: {error}"
        except (TypeError, ValueError):
            return f"{field}: not valid JSON"
        if not isinstance(value, kind):
            return f"{field}: must be a JSON {'array' if kind is list else 'object'}"
    error = headers_error(json.loads(task.headers or "{}"))
    return f"headers: {error}" if error else None


# The headers of Celery's message protocol (v2) and those beat and Switchyard add. A
# schedule's own headers override them: {"task": ...} would run another task than the one
# whose permission was checked, {"id": ...} reuse another run's task id.
RESERVED_HEADERS = frozenset({
    "lang", "task", "id", "shadow", "eta", "expires", "group", "group_index", "retries",
    "timelimit", "root_id", "parent_id", "argsrepr", "kwargsrepr", "origin", "ignore_result",
    "replaced_task_nesting", "stamped_headers", "stamps", "periodic_task_name",
    "celery_beat_task",
})  # fmt: skip


def headers_error(headers: dict) -> str | None:
    """A schedule's message headers: none of Celery's, beat's or Switchyard's own."""
    taken = sorted(key for key in headers
                   if key in RESERVED_HEADERS or str(key).startswith("switchyard"))  # fmt: skip
    if taken:
        return f"{', '.join(map(repr, taken))} reserved for Celery's own message headers"
    return None


def _options_problem(task) -> str | None:
    if task.expire_seconds is not None and task.expire_seconds > MAX_INTERVAL.total_seconds():
        return f"expire_seconds: {task.expire_seconds} is more than 10 years"
    if task.priority is not None and not 0 <= task.priority <= MAX_PRIORITY:
        return f"priority: {task.priority} is not between 0 and {MAX_PRIORITY}"
    if task.total_run_count is not None and task.total_run_count > MAX_RUN_COUNT:
        return f"total_run_count: {task.total_run_count} is out of range"
    return None


def _schedule_options(task):
    from .models import ScheduleOptions

    try:
        return task.options
    except ScheduleOptions.DoesNotExist:
        return None
