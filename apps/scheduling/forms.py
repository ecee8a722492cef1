"""The admin's periodic task form: its fields, and the errors on them.

The form reads the page's values (the task: a catalog job or a registered Celery task;
a catalog job's typed parameters, the same fields as its web form, named `param-<name>`;
the schedule of one kind: interval, crontab, solar, clocked; Switchyard's options) into
a PeriodicTask, a schedule row and the options, and shows on its fields the errors of
saving.schedule_errors: the rules live there, once. Saving is saving.save_schedule, as
`manage.py schedules add` saves.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import zoneinfo
from collections.abc import Mapping
from typing import Any

from celery import current_app
from django import forms
from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import models
from django.forms.models import construct_instance
from django.utils import timezone as django_tz
from django_celery_beat.admin import PeriodicTaskForm
from django_celery_beat.models import (
    SOLAR_SCHEDULES,
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)

from apps.jobs import dates, json_values
from apps.jobs.catalog import Job, all_jobs, get_job
from apps.jobs.params import to_json
from apps.jobs.permissions import may_run

from .models import Overlap, ScheduleOptions
from .saving import (
    CRON_FIELDS,
    PARAM_PREFIX,
    SCHEDULE_KINDS,
    Errors,
    is_known_task,
    loads_or_none,
    one_line,
    row_errors,
    save_schedule,
    schedule_errors,
    stored_like,
)

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
        """The row of the chosen kind, checked by saving.row_errors (as save_schedule
        checks it); a field that already says what is wrong keeps its own message."""
        kind = self.cleaned_data.get("kind")
        if kind not in SCHEDULE_KINDS:
            return
        row = getattr(self, f"_{kind}_row")()
        errors = row_errors(row, self._current_clocked_time())
        self.add_errors(errors)
        if not errors:
            self.cleaned_data["schedule"] = stored_like(row)

    def add_errors(self, errors: Errors) -> None:
        """saving's errors on their fields, unless a field said what is wrong already."""
        for field, messages in errors.items():
            if field == NON_FIELD_ERRORS:
                self.add_error(None, messages)
            elif field not in self.fields:
                self.add_error(None, f"{field}: {' '.join(messages)}")
            elif not self.has_error(field):
                self.add_error(field, messages)

    def schedule_row(self):
        return self.cleaned_data.get("schedule")

    def _interval_row(self) -> IntervalSchedule:
        return IntervalSchedule(every=self.cleaned_data.get("every"),
                                period=self.cleaned_data.get("period"))  # fmt: skip

    def _crontab_row(self) -> CrontabSchedule:
        spec = {name: (self.cleaned_data.get(name) or "").strip() or "*" for name in CRON_FIELDS}
        zone = self.cleaned_data.get("timezone") or default_zone()
        return CrontabSchedule(timezone=zoneinfo.ZoneInfo(zone), **spec)

    def _solar_row(self) -> SolarSchedule:
        return SolarSchedule(**{name: self.cleaned_data.get(name)
                                for name in ("event", "latitude", "longitude")})  # fmt: skip

    def _clocked_row(self) -> ClockedSchedule:
        moment = self.cleaned_data.get("clocked_time")
        zone = self.cleaned_data.get("timezone") or default_zone()
        try:
            return ClockedSchedule(clocked_time=moment and read_in_zone(moment, zone))
        except ValidationError as error:
            self.add_error("clocked_time", error)  # saving's own "no time" stays unsaid
            return ClockedSchedule(clocked_time=None)

    def _current_clocked_time(self):
        return None


def read_in_zone(moment: dt.datetime, zone: str) -> dt.datetime:
    """A time the form read in the active zone, as the wall-clock time meant in `zone`.

    A wall-clock time the zone skips (the hour its clocks go forward) is refused: read
    with either offset it is another time on the clock. A time the zone has twice (the
    hour its clocks go back) is the first of the two.
    """
    wall = django_tz.make_naive(moment, django_tz.get_current_timezone())
    aware = django_tz.make_aware(wall, zoneinfo.ZoneInfo(zone))
    if error := dates.nonexistent_error(aware):
        raise ValidationError(error, code="nonexistent")
    return aware


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
        elif isinstance(row.clocked_time, dt.datetime):  # a stored value unreadable: empty
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
        # printable: a row stored before the rule of apps/jobs/json_values.py may hold a
        # lone surrogate, which the page could not encode.
        stored = json_values.printable(_json_object(self.initial.get("kwargs")
                                                    or self.instance.kwargs))  # fmt: skip
        for name, field in job.form_class().base_fields.items():
            key = f"{PARAM_PREFIX}-{name}"
            self.fields[key] = copy.deepcopy(field)
            if name in stored:
                self.initial[key] = stored[name]

    @property
    def parameter_fields(self) -> list:
        return [self[name] for name in self.fields if name.startswith(f"{PARAM_PREFIX}-")]

    # Validation: the fields parse the page's values; saving.schedule_errors checks them --

    def clean(self):
        self.clean_schedule()
        try:
            PeriodicTaskForm.clean(self)  # regtask -> task, expires, JSON
        except ValidationError as error:
            if not self.has_error("task"):  # "Need name of task" is already on its field
                self.add_error("expire_seconds", error)  # "Only one can be set, in expires..."
        return self.cleaned_data

    def _post_clean(self) -> None:
        """The values into the PeriodicTask, then save_schedule's own checks, shown on the
        fields (instead of ModelForm's model validation: schedule_errors includes it)."""
        self.instance = construct_instance(self, self.instance, self._meta.fields)
        if self.job is not None:
            self.instance.kwargs = json.dumps(self.raw_parameters(self.job))
        errors = schedule_errors(self.instance, self.cleaned_data.get("schedule"),
                                 ScheduleOptions(**self.options()), user=self.user)  # fmt: skip
        self.add_errors(errors)

    def raw_parameters(self, job: Job) -> dict[str, Any]:
        """The typed values given, plus any `param-*` key the job does not take."""
        prefix = f"{PARAM_PREFIX}-"
        values = {name[len(prefix):]: to_json(self.cleaned_data.get(name))
                  for name in self.fields if name.startswith(prefix)}  # fmt: skip
        extra = {key[len(prefix):]: self.data[key] for key in self.data
                 if key.startswith(prefix) and key not in self.fields}  # fmt: skip
        return {k: v for k, v in {**values, **extra}.items() if v is not None}

    def _clean_json(self, field: str) -> str:
        """django-celery-beat's check of args and kwargs, by the rule of what a JSON value
        may be (its json.loads reads NaN and 1e309, and fails on deep nesting)."""
        value = self.cleaned_data[field]
        try:
            json_values.loads(value)
        except ValueError as exc:
            raise ValidationError(f"Unable to parse JSON: {exc}") from None
        return value

    # Saving -----------------------------------------------------------------------------

    def save_all(self) -> PeriodicTask:
        """save_schedule, with the values this form read (ScheduleAdmin.save_model)."""
        return save_schedule(self.instance, self.cleaned_data["schedule"], self.options(),
                             user=self.user)  # fmt: skip

    def options(self) -> dict[str, Any]:
        return {
            "overlap": self.cleaned_data.get("overlap") or Overlap.ALLOW,
            "grace_seconds": self.cleaned_data.get("grace_seconds") or 0,
            "alert_recipients": self.cleaned_data.get("alert_recipients") or "",
        }


def _json_object(text: Any) -> dict:
    value = loads_or_none(text) if isinstance(text, str) else text
    return value if isinstance(value, dict) else {}


def one_line_errors(form: forms.BaseForm) -> str:
    """A form's errors on one line, as the CLI prints them: 'field: message; ...'."""
    return one_line(form.errors)


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
