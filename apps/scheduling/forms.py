"""The periodic task form shared by the admin and `manage.py schedules add`.

One form validates everything before anything is written: the task (a catalog job or a
registered Celery task), a catalog job's typed parameters (the same fields as its web
form, named `param-<name>`), the schedule of one kind (interval, crontab, solar,
clocked: the fields are the form's, the row is found or created on save) and
Switchyard's options (overlap, grace period, alert recipients).
"""

from __future__ import annotations

import copy
import json
import zoneinfo
from collections.abc import Mapping
from typing import Any

from celery import current_app, schedules
from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import timezone as django_tz
from django_celery_beat import validators
from django_celery_beat.admin import PeriodicTaskForm
from django_celery_beat.models import (
    SOLAR_SCHEDULES,
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)

from apps.jobs.catalog import Job, ParameterError, all_jobs, clean_parameters, get_job
from apps.jobs.params import to_json
from apps.jobs.permissions import may_run

from . import bounds
from .models import Overlap, ScheduleOptions

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
PERIODS = [(p, label) for p, label in IntervalSchedule.PERIOD_CHOICES if p != "microseconds"]
# The fields the live preview sends (see static/scheduling/schedule_form.js).
PREVIEW_FIELDS = ("kind", "every", "period", *CRON_FIELDS, "timezone", "event", "latitude",
                  "longitude", "clocked_time", "one_off")  # fmt: skip


class Kind(models.TextChoices):
    INTERVAL = "interval", "every so often (interval)"
    CRONTAB = "crontab", "at set times (crontab)"
    SOLAR = "solar", "at a solar event (solar)"
    CLOCKED = "clocked", "once, at a set time (clocked)"


def default_zone() -> str:
    return getattr(settings, "CELERY_TIMEZONE", None) or settings.TIME_ZONE or "UTC"


def zone_choices() -> list[tuple[str, str]]:
    return [(name, name) for name in sorted(zoneinfo.available_timezones())]


def task_choices(user=None, current: str = "") -> list:
    """Catalog jobs by group (by title), then other registered Celery tasks by name: those
    `user` may run (all of them without a user: the operator's CLI). `current`, the task
    a stored schedule already has, stays shown even if the user may not run it."""
    current_app.loader.import_default_modules()
    groups: dict[str, list] = {}
    for job in all_jobs():
        if user is None or may_run(user, job) or job.name == current:
            groups.setdefault(job.group, []).append((job.name, f"{job.title} ({job.name})"))
    others = sorted(name for name in current_app.tasks
                    if not name.startswith("celery.") and get_job(name) is None
                    and (user is None or may_run(user, name) or name == current))  # fmt: skip
    return [("", "---------"), *groups.items(), ("Other tasks", [(n, n) for n in others])]


class TaskChoiceField(forms.ChoiceField):
    """A select of the tasks offered; a name posted outside them is not refused here but
    by the form's clean, which says why (an unknown task, or not yours to run)."""

    def valid_value(self, value) -> bool:
        return True


def is_known_task(name: str) -> bool:
    current_app.loader.import_default_modules()
    return get_job(name) is not None or name in current_app.tasks


class ScheduleForm(forms.Form):
    """When a task runs: one kind of schedule and that kind's fields.

    `schedule_row()` gives the matching schedule row: an existing one (schedules are
    shared rows) or a new, unsaved one. Nothing is written here.
    """

    kind = forms.ChoiceField(
        label="Runs", choices=Kind.choices, initial=Kind.CRONTAB, widget=forms.RadioSelect
    )
    # The column is a 32-bit integer on PostgreSQL; a larger value would be a 500.
    every = forms.IntegerField(label="Every", required=False, initial=10, max_value=2**31 - 1)
    period = forms.ChoiceField(label="Period", choices=PERIODS, initial="minutes", required=False)
    minute = forms.CharField(label="Minute", initial="0", required=False, max_length=240)
    hour = forms.CharField(label="Hour", initial="*", required=False, max_length=96)
    day_of_month = forms.CharField(label="Day of month", initial="*", required=False,
                                   max_length=124)  # fmt: skip
    month_of_year = forms.CharField(label="Month", initial="*", required=False, max_length=64)
    day_of_week = forms.CharField(
        label="Day of week", initial="*", required=False, max_length=64,
        help_text="Cron syntax: * any, 1-5 ranges, */15 steps, 1,15 lists; Sunday is 0. "
        "A day must match both day of month and day of week.",
    )  # fmt: skip
    timezone = forms.ChoiceField(
        label="Time zone", choices=zone_choices, initial=default_zone, required=False,
        help_text="Crontab times are wall-clock times in this zone (daylight saving "
        "included); a clocked time is read in it too.",
    )  # fmt: skip
    event = forms.ChoiceField(label="Solar event", choices=SOLAR_SCHEDULES, required=False)
    latitude = forms.DecimalField(label="Latitude", required=False, max_digits=9,
                                  decimal_places=6, min_value=-90, max_value=90)  # fmt: skip
    longitude = forms.DecimalField(label="Longitude", required=False, max_digits=9,
                                   decimal_places=6, min_value=-180, max_value=180)  # fmt: skip
    clocked_time = forms.DateTimeField(
        label="At", required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )  # fmt: skip

    def clean(self):
        data = super().clean()
        self.clean_schedule()
        return data

    def clean_schedule(self) -> None:
        kind = self.cleaned_data.get("kind")
        if kind in SCHEDULE_KINDS:
            row = getattr(self, f"_clean_{kind}")()
            if row is not None:
                self.cleaned_data["schedule"] = row

    def schedule_row(self):
        return self.cleaned_data.get("schedule")

    def _clean_interval(self) -> IntervalSchedule | None:
        every, period = self.cleaned_data.get("every"), self.cleaned_data.get("period")
        if every is None:
            if not self.has_error("every"):  # the field may have said why already
                self.add_error("every", "Enter how many periods apart the runs are.")
        elif every < 1:
            self.add_error("every", "The interval must be at least 1 (an interval of zero "
                                    "would run without pause).")  # fmt: skip
        if not period:
            self.add_error("period", "Choose a period.")
        if self.has_error("every") or self.has_error("period"):
            return None
        error = bounds.interval_error(every, period)
        if error:
            self.add_error("every", error[0].upper() + error[1:] + ".")
            return None
        return _find_or_build(IntervalSchedule, every=every, period=period)

    def _clean_crontab(self) -> CrontabSchedule | None:
        spec = {name: (self.cleaned_data.get(name) or "").strip() or "*" for name in CRON_FIELDS}
        for name, value in spec.items():
            try:
                CRON_VALIDATORS[name](value)
                _celery_cron_field(name, value)
            except (ValidationError, ValueError) as error:
                self.add_error(name, _cron_message(name, value, error))
        zone = self.cleaned_data.get("timezone") or default_zone()
        if any(self.has_error(name) for name in CRON_FIELDS):
            return None
        try:  # Celery refuses days that never occur, such as 30 February
            schedules.crontab(spec["minute"], spec["hour"], spec["day_of_week"],
                              spec["day_of_month"], spec["month_of_year"])  # fmt: skip
        except ValueError as error:
            self.add_error("day_of_month", str(error))
            return None
        return _find_or_build(CrontabSchedule, timezone=zoneinfo.ZoneInfo(zone), **spec)

    def _clean_solar(self) -> SolarSchedule | None:
        spec = {name: self.cleaned_data.get(name) for name in ("event", "latitude", "longitude")}
        for name, value in spec.items():
            if value in (None, ""):
                self.add_error(name, "This field is required for a solar schedule.")
        if any(value in (None, "") for value in spec.values()):
            return None
        return _find_or_build(SolarSchedule, **spec)

    def _clean_clocked(self) -> ClockedSchedule | None:
        moment = self.cleaned_data.get("clocked_time")
        zone = self.cleaned_data.get("timezone") or default_zone()
        if moment is None:
            self.add_error("clocked_time", "Enter the date and time to run at.")
            return None
        # The form read the time in the active zone; the user meant the chosen one.
        wall = django_tz.make_naive(moment, django_tz.get_current_timezone())
        moment = django_tz.make_aware(wall, zoneinfo.ZoneInfo(zone))
        if bounds.moment_error(moment):
            self.add_error("clocked_time", bounds.moment_error(moment))
            return None
        if moment <= django_tz.now() and moment != self._current_clocked_time():
            self.add_error("clocked_time", "This time has passed: choose a time to come.")
            return None
        self.cleaned_data["one_off"] = True  # a clocked schedule runs once
        return _find_or_build(ClockedSchedule, clocked_time=moment)

    def _current_clocked_time(self):
        return None


def _find_or_build(model: type[models.Model], **spec):
    return model.objects.filter(**spec).order_by("pk").first() or model(**spec)


def _celery_cron_field(name: str, value: str) -> None:
    """Celery's own parser must read the field too (beat uses Celery's crontab)."""
    limits = {"minute": (60, 0), "hour": (24, 0), "day_of_week": (7, 0),
              "day_of_month": (31, 1), "month_of_year": (12, 1)}  # fmt: skip
    schedules.crontab._expand_cronspec(value, *limits[name])


def _cron_message(name: str, value: str, error: Exception) -> str:
    detail = "; ".join(error.messages) if isinstance(error, ValidationError) else str(error)
    return f"{value!r} is not a valid {name.replace('_', ' ')} field: {detail}"


class ScheduleTaskForm(PeriodicTaskForm, ScheduleForm):
    """A periodic task with its schedule, typed parameters and Switchyard options."""

    regtask = TaskChoiceField(label="Task", choices=task_choices, required=False)
    overlap = ScheduleOptions._meta.get_field("overlap").formfield()
    grace_seconds = ScheduleOptions._meta.get_field("grace_seconds").formfield()
    alert_recipients = forms.CharField(
        label="Alert recipients", required=False, widget=forms.TextInput(attrs={"size": 60}),
        help_text=ScheduleOptions._meta.get_field("alert_recipients").help_text,
    )  # fmt: skip

    class Meta:
        model = PeriodicTask
        # The schedule foreign keys are set from the schedule fields, never directly.
        fields = ("name", "task", "enabled", "description", "start_time", "one_off", "args",
                  "kwargs", "expires", "expire_seconds", "queue", "exchange", "routing_key",
                  "priority", "headers")  # fmt: skip

    # Who is saving: the admin sets it (apps.scheduling.admin); None is the operator's
    # `manage.py schedules`, which may schedule any task.
    user = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.user is not None:
            self.fields["regtask"].choices = task_choices(self.user, self.instance.task)
        self._initial_task()
        self._initial_schedule()
        self._initial_options()
        self.job = get_job(self.chosen_task_name())
        if self.job is not None:
            self._add_parameter_fields(self.job)

    # Initial values ---------------------------------------------------------------------

    def _initial_task(self) -> None:
        name = self.initial.get("task") or ""
        if name and is_known_task(name):
            self.initial["regtask"], self.initial["task"] = name, ""

    def _initial_schedule(self) -> None:
        row = self.instance.scheduler if self.instance.pk else None
        if row is None:
            return
        kind = next(k for k in SCHEDULE_KINDS if getattr(self.instance, f"{k}_id"))
        self.initial["kind"] = kind
        if kind == "interval":
            self.initial.update(every=row.every, period=row.period)
        elif kind == "crontab":
            self.initial.update({name: getattr(row, name) for name in CRON_FIELDS},
                                timezone=str(row.timezone))  # fmt: skip
        elif kind == "solar":
            self.initial.update(event=row.event, latitude=row.latitude, longitude=row.longitude)
        else:
            self.initial["clocked_time"] = django_tz.localtime(row.clocked_time)

    def _initial_options(self) -> None:
        options = ScheduleOptions.objects.filter(periodic_task_id=self.instance.pk).first()
        if options is not None:
            self.initial.update(overlap=options.overlap, grace_seconds=options.grace_seconds,
                                alert_recipients=options.alert_recipients)  # fmt: skip

    def _current_clocked_time(self):
        clocked = self.instance.clocked if self.instance.clocked_id else None
        return clocked.clocked_time if clocked else None

    # Parameters -------------------------------------------------------------------------

    def chosen_task_name(self) -> str:
        if self.is_bound:
            return (self.data.get("regtask") or self.data.get("task") or "").strip()
        return self.initial.get("regtask") or self.initial.get("task") or self.instance.task

    def _add_parameter_fields(self, job: Job) -> None:
        stored = _json_object(self.initial.get("kwargs") or self.instance.kwargs)
        for name, field in job.form_class().base_fields.items():
            key = f"{PARAM_PREFIX}-{name}"
            self.fields[key] = copy.deepcopy(field)
            if name in stored:
                self.initial[key] = stored[name]

    @property
    def parameter_fields(self) -> list:
        return [self[name] for name in self.fields if name.startswith(f"{PARAM_PREFIX}-")]

    # Validation -------------------------------------------------------------------------

    def clean(self):
        self.clean_schedule()
        try:
            data = PeriodicTaskForm.clean(self)  # regtask -> task, expires, JSON
        except ValidationError as error:
            if not self.has_error("task"):  # "Need name of task" is already on its field
                self.add_error("expire_seconds", error)  # "Only one can be set, in expires..."
            return self.cleaned_data
        self._clean_task(data)
        self._clean_options()
        return data

    def _clean_options(self) -> None:
        """ScheduleOptions checks its own fields (ScheduleOptions.clean)."""
        options = ScheduleOptions(**self.options())
        try:
            options.clean()
        except ValidationError as error:
            for field, messages in error.message_dict.items():
                if not self.has_error(field):
                    self.add_error(field, messages)
            return
        self.cleaned_data["alert_recipients"] = options.alert_recipients

    def _clean_task(self, data: dict) -> None:
        name = data.get("task") or ""
        if self.user is not None and not may_run(self.user, name):
            self.add_error("task", f"You may not run {name!r}, so you may not schedule it.")
        elif self.job is not None:
            self._clean_parameters(self.job, data)
        elif not is_known_task(name):
            self.add_error("task", f"Unknown task {name!r}: not a catalog job nor a "
                                   "registered Celery task.")  # fmt: skip
        else:
            self._clean_raw_arguments(data)

    def _clean_parameters(self, job: Job, data: dict) -> None:
        if any(self.has_error(name) for name in self.fields if name.startswith("param-")):
            return  # the typed fields already said what is wrong
        try:
            parameters = clean_parameters(job, self.raw_parameters(job))
        except ParameterError as error:
            for name, messages in error.errors.items():
                key = f"{PARAM_PREFIX}-{name}"
                if key in self.fields:
                    self.add_error(key, messages)
                else:
                    self.add_error(None, f"{name}: {' '.join(messages)}")
            return
        data["kwargs"], data["args"] = json.dumps(parameters), "[]"

    def raw_parameters(self, job: Job) -> dict[str, Any]:
        """The typed values given, plus any `param-*` key the job does not take."""
        prefix = f"{PARAM_PREFIX}-"
        values = {name[len(prefix):]: to_json(self.cleaned_data.get(name))
                  for name in self.fields if name.startswith(prefix)}  # fmt: skip
        extra = {key[len(prefix):]: self.data[key] for key in self.data
                 if key.startswith(prefix) and key not in self.fields}  # fmt: skip
        return {k: v for k, v in {**values, **extra}.items() if v is not None}

    def _clean_raw_arguments(self, data: dict) -> None:
        if not self.has_error("args") and not isinstance(_loads(data.get("args")), list):
            self.add_error("args", "Positional arguments must be a JSON array, like [1, 2].")
        if not self.has_error("kwargs") and not isinstance(_loads(data.get("kwargs")), dict):
            self.add_error("kwargs", 'Keyword arguments must be a JSON object, like {"x": 1}.')

    def clean_name(self) -> str:
        return _within(self.cleaned_data["name"], bounds.name_error)

    def clean_start_time(self):
        return _within(self.cleaned_data.get("start_time"), bounds.moment_error)

    def clean_expires(self):
        return _within(self.cleaned_data.get("expires"), bounds.moment_error)

    def clean_headers(self) -> str:
        text = self.cleaned_data.get("headers")
        headers = _loads(text)
        if isinstance(headers, dict):
            _within(headers, bounds.headers_error)
        return text

    def clean_expire_seconds(self):
        seconds = self.cleaned_data.get("expire_seconds")
        if seconds is not None and seconds > bounds.MAX_INTERVAL.total_seconds():
            raise ValidationError("Expiry is at most 10 years (315360000 seconds).")
        return seconds

    # Saving -----------------------------------------------------------------------------

    def _post_clean(self) -> None:
        row = self.cleaned_data.get("schedule")
        if row is None:
            # The schedule fields carry the error; the model would add "One of clocked,
            # interval, crontab, or solar must be set" on top.
            self._validate_unique = False
        for kind in SCHEDULE_KINDS:  # the model checks that exactly one is set
            setattr(self.instance, kind, row if kind == self.cleaned_data.get("kind") else None)
        super()._post_clean()

    @transaction.atomic
    def save_all(self) -> PeriodicTask:
        """Write the schedule row (if new), the task and its options."""
        task = self.instance
        row = self.cleaned_data["schedule"]
        if row.pk is None:
            row = _get_or_create_like(row)
        for kind in SCHEDULE_KINDS:
            setattr(task, kind, row if kind == self.cleaned_data["kind"] else None)
        task.save()
        ScheduleOptions.objects.update_or_create(periodic_task=task, defaults=self.options())
        return task

    def options(self) -> dict[str, Any]:
        return {
            "overlap": self.cleaned_data.get("overlap") or Overlap.ALLOW,
            "grace_seconds": self.cleaned_data.get("grace_seconds") or 0,
            "alert_recipients": self.cleaned_data.get("alert_recipients") or "",
        }


# One path to a saved schedule -------------------------------------------------------------


class ScheduleError(ValueError):
    """Bad input for a schedule: the form's errors, per field; nothing was written."""

    def __init__(self, form: forms.BaseForm):
        super().__init__(one_line_errors(form))
        self.errors = form.errors

    def one_line(self) -> str:
        return str(self)


def save_schedule(*, name: str, task: str, schedule: Mapping[str, Any],
                  params: Mapping[str, Any] | None = None,
                  options: Mapping[str, Any] | None = None, one_off: bool = False,
                  enabled: bool = True, user=None) -> PeriodicTask:  # fmt: skip
    """Check and save a new schedule, atomically (ScheduleError if anything is wrong).

    The same rules as the admin's form, because it is the same form (bounds, the job's
    typed parameters, ScheduleOptions.clean, and `may_run` when a `user` is given; None
    is the operator's `manage.py schedules`), and the same write (`save_all`), with no
    admin page's initial values: what is not given takes the model's default.

    `schedule`: {"kind": "interval", "every": 10, "period": "minutes"}, {"kind":
    "crontab", "minute": "0", ..., "timezone": "Europe/Berlin"}, {"kind": "solar",
    "event": ..., "latitude": ..., "longitude": ...} or {"kind": "clocked",
    "clocked_time": ..., "timezone": ...}. `params`: a catalog job's parameters (text
    or values), or another task's keyword arguments. `options`: ScheduleOptions fields.
    """
    defaults = {f.name: f.get_default() for f in ScheduleOptions._meta.concrete_fields
                if f.name in ("overlap", "grace_seconds", "alert_recipients")}  # fmt: skip
    data = {"name": name, "regtask": task, "enabled": enabled, "one_off": one_off,
            "args": "[]", "kwargs": "{}", **defaults, **(options or {}), **schedule}  # fmt: skip
    data = {key: value for key, value in data.items() if value not in (None, False, "")}
    if get_job(task) is not None:
        data.update({f"{PARAM_PREFIX}-{key}": value for key, value in (params or {}).items()})
    else:
        data["kwargs"] = json.dumps(dict(params or {}))
    form_class = type("ScheduleTaskForm", (ScheduleTaskForm,), {"user": user})
    form = form_class(data=data)
    if not form.is_valid():
        raise ScheduleError(form)
    return form.save_all()


def _within(value, error_of):
    """The value, or a ValidationError with the bounds' message (None passes)."""
    error = error_of(value) if value is not None else None
    if error:
        raise ValidationError(error)
    return value


def _get_or_create_like(row: models.Model) -> models.Model:
    spec = {f.name: getattr(row, f.name) for f in row._meta.concrete_fields if not f.primary_key}
    return type(row).objects.get_or_create(**spec)[0]


def _json_object(text: Any) -> dict:
    value = _loads(text) if isinstance(text, str) else text
    return value if isinstance(value, dict) else {}


def _loads(text: Any) -> Any:
    try:
        return json.loads(text or "null")
    except (TypeError, ValueError):
        return None


def one_line_errors(form: forms.BaseForm) -> str:
    """A form's errors on one line, as the CLI prints them: 'field: message; ...'."""
    parts = []
    for field, errors in form.errors.items():
        label = "error" if field == "__all__" else field.removeprefix(f"{PARAM_PREFIX}-")
        parts.append(f"{label}: {' '.join(str(e) for e in errors)}")
    return "; ".join(parts)


def form_data_for_preview(query: Mapping[str, Any]) -> dict[str, Any]:
    return {name: query.get(name) for name in PREVIEW_FIELDS if query.get(name) is not None}


def form_data(**values: Any) -> dict[str, Any]:
    """What the admin's add page would post: every field's initial value, then `values`."""
    form = ScheduleTaskForm()
    data = {}
    for name, field in form.fields.items():
        initial = form.get_initial_for_field(field, name)
        if initial not in (None, "", False):
            data[name] = initial
    data.update({k: v for k, v in values.items() if v is not None})
    return data
