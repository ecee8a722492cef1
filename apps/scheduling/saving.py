"""save_schedule: the one way a schedule is checked and written.

The admin's form (ScheduleTaskForm: its page shows the errors on its fields) and
`manage.py schedules add` (one line, exit status 2) both call it with Python values: the
PeriodicTask (new or existing, its fields set), the schedule row (an Interval, Crontab,
Solar or ClockedSchedule, saved or not) and the ScheduleOptions field values. The rules
on those values are here, once, in `schedule_errors` (the form asks it too, to show the
errors on its page): the bounds (bounds.py), the schedule row's fields, the task (a
catalog job's parameters through clean_parameters, `may_run` when a user is given),
the model's own checks (a taken name) and ScheduleOptions.clean. Errors are keyed by
the admin form's field names (`param-<name>` for a job's parameter, `__all__` for the
rest), so a message reads the same at both doors.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from celery import current_app, schedules
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import models, transaction
from django.utils import timezone as django_tz
from django_celery_beat import validators
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)

from apps.jobs import json_values
from apps.jobs.catalog import (
    MAX_QUEUE_NAME,
    ParameterError,
    clean_parameters,
    could_be_queue,
    get_job,
)
from apps.jobs.permissions import may_run

from . import bounds
from .models import ScheduleOptions

PARAM_PREFIX = "param"
SCHEDULE_KINDS = ("interval", "crontab", "solar", "clocked")
CRON_FIELDS = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")
CRON_VALIDATORS = {
    "minute": validators.minute_validator,
    "hour": validators.hour_validator,
    "day_of_month": validators.day_of_month_validator,
    "month_of_year": validators.month_of_year_validator,
    "day_of_week": validators.day_of_week_validator,
}
# What beat and the run records write, never the person saving the schedule.
NOT_SET_BY_PEOPLE = ("id", "last_run_at", "total_run_count", "date_changed")
# The ScheduleOptions fields a schedule is saved with: every field of the model.
OPTION_FIELDS = tuple(f.name for f in ScheduleOptions._meta.concrete_fields
                      if not f.primary_key and f.name != "periodic_task")  # fmt: skip

Errors = dict[str, list[str]]


class ScheduleError(ValueError):
    """Bad input for a schedule, per field (the admin form's names); nothing was written."""

    def __init__(self, errors: Mapping[str, list[str]]):
        self.errors = {field: list(messages) for field, messages in errors.items()}
        super().__init__(one_line(self.errors))

    def one_line(self) -> str:
        return str(self)


def one_line(errors: Mapping[str, Any]) -> str:
    """Errors on one line, as the CLI prints them: 'field: message; ...' (a message that
    echoes a value with a line break in it stays on the line)."""
    parts = []
    for field, messages in errors.items():
        label = "error" if field == NON_FIELD_ERRORS else field.removeprefix(f"{PARAM_PREFIX}-")
        parts.append(f"{label}: {' '.join(str(m) for m in messages)}")
    return bounds.one_line("; ".join(parts))


def save_schedule(task: PeriodicTask, row: models.Model, options: Mapping[str, Any], *,
                  user=None, text: bool = False) -> PeriodicTask:  # fmt: skip
    """Check and write a schedule, atomically: ScheduleError if anything is wrong.

    `task`: a PeriodicTask, new or existing, with its fields set (a catalog job's
    parameters as its kwargs, text or values: they are stored cleaned). `row`: its
    schedule, saved or not (an equal stored row is reused). `options`: ScheduleOptions
    field values (what is not given takes the model's default). `user`: who saves (the
    admin); None is the operator's `manage.py schedules`, which may schedule any task.
    `text`: the parameters are text typed on a command line, not JSON values.
    """
    checked = ScheduleOptions(**options)
    errors = schedule_errors(task, row, checked, user=user, text=text)
    if errors:
        raise ScheduleError(errors)
    return _write(task, row, {name: getattr(checked, name) for name in OPTION_FIELDS})


def schedule_errors(task: PeriodicTask, row: models.Model | None, options: ScheduleOptions,
                    *, user=None, text: bool = False) -> Errors:  # fmt: skip
    """Every rule on a schedule's values, per field; {} when it may be saved.

    Cleans as it checks: a catalog job's parameters (task.kwargs), the alert recipients,
    one_off (set for a clocked schedule).
    `row` None: the schedule fields were refused already (the form's own parsing).
    """
    errors: Errors = {}
    if isinstance(row, ClockedSchedule):
        task.one_off = True  # a clocked schedule runs once
    if row is not None:
        _merge(errors, row_errors(row, _stored_clocked_time(task)))
    _merge(errors, task_errors(task, user, text=text))
    _merge(errors, model_errors(task, row, already=tuple(errors)))
    _merge(errors, options_errors(options))
    return errors


# The schedule row --------------------------------------------------------------------------


def row_errors(row: models.Model, current_clocked_time=None) -> Errors:
    """The schedule's own fields. `current_clocked_time`: a clocked time already stored
    may stay (it has passed, but saving the task again must not be refused for it)."""
    if isinstance(row, IntervalSchedule):
        return _interval_errors(row)
    if isinstance(row, CrontabSchedule):
        return _crontab_errors(row)
    if isinstance(row, SolarSchedule):
        return _solar_errors(row)
    return _clocked_errors(row, current_clocked_time)


def _interval_errors(row: IntervalSchedule) -> Errors:
    errors: Errors = {}
    if row.every is None:
        errors["every"] = ["Enter how many periods apart the runs are."]
    elif row.every < 1:
        errors["every"] = ["The interval must be at least 1 (an interval of zero would run "
                           "without pause)."]  # fmt: skip
    if not row.period:
        errors["period"] = ["Choose a period."]
    if errors:
        return errors
    error = bounds.interval_error(row.every, row.period)
    return {"every": [error[0].upper() + error[1:] + "."]} if error else {}


def _crontab_errors(row: CrontabSchedule) -> Errors:
    errors: Errors = {}
    for name in CRON_FIELDS:
        value = getattr(row, name)
        limit = CrontabSchedule._meta.get_field(name).max_length
        try:
            if len(value) > limit:
                raise ValueError(f"at most {limit} characters")
            if not value.isascii():  # int() reads other scripts' digits (U+0661) too
                raise ValueError("only the digits 0-9, names, and , - * / are allowed")
            CRON_VALIDATORS[name](value)
            _celery_cron_field(name, value)
        except (ValidationError, ValueError) as error:
            errors[name] = [_cron_message(name, value, error)]
    if errors:
        return errors
    try:  # Celery refuses days that never occur, such as 30 February
        schedules.crontab(row.minute, row.hour, row.day_of_week, row.day_of_month,
                          row.month_of_year)  # fmt: skip
    except ValueError as error:
        return {"day_of_month": [str(error)]}
    return {}


def _solar_errors(row: SolarSchedule) -> Errors:
    missing = {name: ["This field is required for a solar schedule."]
               for name in ("event", "latitude", "longitude")
               if getattr(row, name) in (None, "")}  # fmt: skip
    if missing:
        return missing
    problem = bounds._solar_problem(row)
    return {"latitude": [problem.removeprefix("solar: ")]} if problem else {}


def _clocked_errors(row: ClockedSchedule, current_clocked_time) -> Errors:
    moment = row.clocked_time
    if moment is None:
        return {"clocked_time": ["Enter the date and time to run at."]}
    if bounds.moment_error(moment):
        return {"clocked_time": [bounds.moment_error(moment)]}
    if moment <= django_tz.now() and moment != current_clocked_time:
        return {"clocked_time": ["This time has passed: choose a time to come."]}
    return {}


def _celery_cron_field(name: str, value: str) -> None:
    """Celery's own parser must read the field too (beat uses Celery's crontab)."""
    limits = {"minute": (60, 0), "hour": (24, 0), "day_of_week": (7, 0),
              "day_of_month": (31, 1), "month_of_year": (12, 1)}  # fmt: skip
    schedules.crontab._expand_cronspec(value, *limits[name])


def _cron_message(name: str, value: str, error: Exception) -> str:
    detail = "; ".join(error.messages) if isinstance(error, ValidationError) else str(error)
    return f"{value!r} is not a valid {name.replace('_', ' ')} field: {detail}"


def _stored_clocked_time(task: PeriodicTask):
    if task.pk is None:
        return None
    stored = PeriodicTask.objects.filter(pk=task.pk).values_list("clocked__clocked_time")
    return next(iter(stored), (None,))[0]


# The task ----------------------------------------------------------------------------------


def is_known_task(name: str) -> bool:
    current_app.loader.import_default_modules()
    return get_job(name) is not None or name in current_app.tasks


def task_errors(task: PeriodicTask, user=None, *, text: bool = False) -> Errors:
    """Its name, dates and execution options (bounds.py; a queue, exchange and routing
    key by apps.control's rule for queue names), then what it runs."""
    errors: Errors = {}
    for field, error in (("name", bounds.name_error(task.name or "")),
                         ("start_time", _moment_error(task.start_time)),
                         ("expires", _moment_error(task.expires)),
                         ("expire_seconds", _expire_seconds_error(task.expire_seconds)),
                         ("headers", _headers_error(task.headers)),
                         *((name, _routing_error(name, getattr(task, name)))
                           for name in ROUTING_FIELDS)):  # fmt: skip
        if error:
            errors[field] = [error]
    _merge(errors, _what_it_runs_errors(task, user, text))
    return errors


def _what_it_runs_errors(task: PeriodicTask, user, text: bool) -> Errors:
    name = task.task or ""
    if user is not None and not may_run(user, name):
        return {"task": [f"You may not run {name!r}, so you may not schedule it."]}
    job = get_job(name)
    if job is not None and not job.schedulable:
        return {"task": [f"{job.title} acts as the person who starts it, and a schedule "
                         "has none: it cannot be scheduled."]}  # fmt: skip
    if job is not None:
        return _parameter_errors(task, job, text)
    if not is_known_task(name):
        return {"task": [f"Unknown task {name!r}: not a catalog job nor a registered "
                         "Celery task."]}  # fmt: skip
    return _arguments_errors(task)


ARGUMENT_SHAPES = {
    "args": (list, "Positional arguments must be a JSON array, like [1, 2]."),
    "kwargs": (dict, 'Keyword arguments must be a JSON object, like {"x": 1}.'),
}


def _arguments_errors(task: PeriodicTask) -> Errors:
    """A plain Celery task's args and kwargs: a JSON array and object that can be stored
    and sent (no NaN, no 1e309, no lone surrogate: apps/jobs/json_values.py)."""
    errors: Errors = {}
    for field, (kind, shape) in ARGUMENT_SHAPES.items():
        try:
            value = json_values.loads(getattr(task, field) or "null")
        except json_values.NotStorable as error:
            errors[field] = [f"{str(error)[:1].upper()}{str(error)[1:]}."]
            continue
        except (TypeError, ValueError):
            value = None
        if not isinstance(value, kind):
            errors[field] = [shape]
    return errors


def _parameter_errors(task: PeriodicTask, job, text: bool) -> Errors:
    """A catalog job's parameters (task.kwargs), cleaned in place as the job's form
    cleans them; errors on `param-<name>` (or on the whole for a name it does not take)."""
    kwargs = loads_or_none(task.kwargs)
    if not isinstance(kwargs, dict):
        return {"kwargs": ['Keyword arguments must be a JSON object, like {"x": 1}.']}
    if secret_errors := _secret_errors(job, kwargs):
        return secret_errors
    try:
        parameters = clean_parameters(job, kwargs, text=text)
    except ParameterError as error:
        taken = {p.name for p in job.params}
        errors: Errors = {}
        for name, messages in error.errors.items():
            if name in taken:
                errors[f"{PARAM_PREFIX}-{name}"] = list(messages)
            else:
                errors.setdefault(NON_FIELD_ERRORS, []).append(f"{name}: {' '.join(messages)}")
        return errors
    task.kwargs, task.args = json.dumps(parameters), "[]"
    return {}


NOT_IN_SCHEDULES = (
    "a secret cannot be kept in a schedule (its row is stored in clear); "
    "run this job by hand, or give it the secret another way"
)


def _secret_errors(job, kwargs: dict) -> Errors:
    """Schedules refuse secret parameters: given, or required (then it cannot be scheduled)."""
    return {f"{PARAM_PREFIX}-{p.name}": [NOT_IN_SCHEDULES] for p in job.params
            if p.secret and (p.required or kwargs.get(p.name) not in (None, ""))}  # fmt: skip


ROUTING_FIELDS = ("queue", "exchange", "routing_key")


def _routing_error(field: str, name: str | None) -> str | None:
    """A queue, exchange or routing key no queue could have, by the control app's rule
    for queue names (no control characters, at most MAX_QUEUE_NAME characters). A
    well-formed name nobody has configured is taken: a worker may consume any queue
    (`celery worker -Q NAME`)."""
    if not name or could_be_queue(name):
        return None
    label = field.replace("_", " ").capitalize()
    return (f"{label} {name[:60]!r} cannot be a name on the broker: at "
            f"most {MAX_QUEUE_NAME} characters, and no control characters.")  # fmt: skip


def _moment_error(moment) -> str | None:
    return bounds.moment_error(moment) if moment is not None else None


def _expire_seconds_error(seconds) -> str | None:
    if seconds is not None and seconds > bounds.MAX_INTERVAL.total_seconds():
        return "Expiry is at most 10 years (315360000 seconds)."
    return None


def _headers_error(text: str | None) -> str | None:
    headers = loads_or_none(text or "{}")
    if not isinstance(headers, dict):
        return 'Headers must be a JSON object, like {"x-team": "ops"}.'
    return json_values.problem(headers) or bounds.headers_error(headers)


def model_errors(task: PeriodicTask, row: models.Model | None, already=()) -> Errors:
    """PeriodicTask's own checks (field lengths, a taken name, one schedule), with `row`
    as its schedule; not of the fields `already` refused (a name with a NUL in it must
    not reach the query for a taken name: PostgreSQL refuses the query)."""
    for kind in SCHEDULE_KINDS:
        setattr(task, kind, row if row is not None and kind == kind_of(row) else None)
    try:
        # Without a row the schedule fields carry the error, and the model would add "One
        # of clocked, interval, crontab, or solar must be set" on top.
        task.full_clean(exclude=(*NOT_SET_BY_PEOPLE, *already), validate_unique=row is not None)
    except ValidationError as error:
        return {field: list(messages) for field, messages in error.message_dict.items()}
    return {}


def kind_of(row: models.Model) -> str:
    return {IntervalSchedule: "interval", CrontabSchedule: "crontab", SolarSchedule: "solar",
            ClockedSchedule: "clocked"}[type(row)]  # fmt: skip


# The options -------------------------------------------------------------------------------


def options_errors(options: ScheduleOptions) -> Errors:
    """ScheduleOptions checks its own fields (and tidies the recipients)."""
    try:
        options.clean()
    except ValidationError as error:
        return {field: list(messages) for field, messages in error.message_dict.items()}
    return {}


# The write ---------------------------------------------------------------------------------


@transaction.atomic
def _write(task: PeriodicTask, row: models.Model, options: dict[str, Any]) -> PeriodicTask:
    """The schedule row (an equal stored one, or this one), the task and its options."""
    row = stored_like(row)
    if row.pk is None:
        row.save()
    for kind in SCHEDULE_KINDS:
        setattr(task, kind, row if kind == kind_of(row) else None)
    task.save()
    ScheduleOptions.objects.update_or_create(periodic_task=task, defaults=options)
    return task


def stored_like(row: models.Model) -> models.Model:
    """An equal stored row (schedule rows are shared), or this one as it is."""
    if row.pk is not None:
        return row
    spec = {f.name: getattr(row, f.name) for f in row._meta.concrete_fields if not f.primary_key}
    return type(row).objects.filter(**spec).order_by("pk").first() or row


def _merge(errors: Errors, more: Errors) -> None:
    for field, messages in more.items():
        errors.setdefault(field, []).extend(messages)


def loads_or_none(text: Any) -> Any:
    """Stored JSON text as it reads (NaN and all), or None if it does not read."""
    try:
        return json.loads(text or "null")
    except (TypeError, ValueError, RecursionError):
        return None
