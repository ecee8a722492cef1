from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import models, transaction
from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone
from django_celery_beat.models import PeriodicTask, PeriodicTasks
from django_celery_beat.querysets import PeriodicTaskQuerySet

from apps.jobs.catalog import ParameterError, clean_parameters, get_job
from apps.jobs.dispatch import record_and_send
from apps.jobs.models import Run, Source, State

from . import bounds, preview

#: What reading a schedule's due time needs, in one query.
SCHEDULE_RELATED = ("interval", "crontab", "solar", "clocked", "options")


class Overlap(models.TextChoices):
    ALLOW = "allow", "allow overlapping runs"
    SKIP = "skip", "skip while the previous run is still running"


class LeaderFence(models.Model):
    """A fenced lease: the token of the latest beat to take the leader lease. A beat
    takes the next token when it becomes leader, and sends runs only in a transaction
    that finds its own token still here: a leader that stalled past its lease while a
    newer one took over sends nothing when it resumes (beat/leadership.py)."""

    name = models.CharField(max_length=100, primary_key=True)
    token = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name}: {self.token}"

    @classmethod
    def next_token(cls, name: str) -> int:
        """Raise the fence: every earlier holder's sends are refused from now on."""
        with transaction.atomic():
            cls.objects.get_or_create(name=name)
            cls.objects.filter(name=name).update(token=models.F("token") + 1)
            return cls.objects.get(name=name).token

    @classmethod
    def holds(cls, name: str, token: int) -> bool:
        """Whether `token` is still the latest; in a transaction, the row stays locked
        (PostgreSQL; SQLite's IMMEDIATE transactions lock the database) until it ends,
        so no newer leader takes over between this check and the caller's writes."""
        return bool(cls.objects.filter(name=name, token=token).update(token=token))


class ScheduleOptions(models.Model):
    """Switchyard's rules for one django-celery-beat PeriodicTask."""

    periodic_task = models.OneToOneField(
        PeriodicTask, on_delete=models.CASCADE, related_name="options"
    )
    overlap = models.CharField(max_length=8, choices=Overlap.choices, default=Overlap.ALLOW)
    grace_seconds = models.PositiveIntegerField(
        default=300, help_text="Alert when a due run has not started this long after its time."
    )
    alert_recipients = models.TextField(
        blank=True, help_text="Comma-separated email addresses; ADMINS when empty."
    )

    def __str__(self) -> str:
        return f"options of {self.periodic_task.name}"

    def clean(self) -> None:
        """Its own bounds (bounds.py): saving.save_schedule calls it (for the admin form
        and `manage.py schedules add`); beat and the alert sweep ask bounds.row_problem of
        stored rows."""
        errors = {}
        grace = bounds.grace_error(self.grace_seconds)
        if grace:
            errors["grace_seconds"] = grace
        bad = [a for a in _addresses(self.alert_recipients) if not _is_email(a)]
        if bad:
            errors["alert_recipients"] = f"{bad[0]!r} is not an email address."
        if errors:
            raise ValidationError(errors)
        self.alert_recipients = ", ".join(_addresses(self.alert_recipients))

    @property
    def recipients(self) -> list[str]:
        """The valid addresses (a row written by hand may hold anything)."""
        return [a for a in _addresses(self.alert_recipients) if _is_email(a)]


def _addresses(text: str) -> list[str]:
    return [a.strip() for a in (text or "").split(",") if a.strip()]


class ScheduleQuerySet(PeriodicTaskQuerySet):
    def enabled(self) -> ScheduleQuerySet:
        return self.filter(enabled=True)

    def for_jobs(self, job_names) -> ScheduleQuerySet:
        return self.filter(task__in=job_names)

    def with_schedules(self) -> ScheduleQuerySet:
        """With the schedule rows and options a due time is computed from."""
        return self.select_related(*SCHEDULE_RELATED)

    def with_run_summary(self, now: dt.datetime | None = None) -> ScheduleQuerySet:
        """Each schedule's last run, last success and runs in 24 h: subqueries, no N+1."""
        now = now or timezone.now()
        runs = Run.objects.filter(schedule_name=OuterRef("name")).order_by("-queued_at", "-id")
        successes = runs.filter(state=State.SUCCEEDED)
        day = now - dt.timedelta(days=1)
        recent = (
            Run.objects.filter(schedule_name=OuterRef("name"), queued_at__gte=day)
            .order_by()
            .values("schedule_name")
            .annotate(count=Count("pk"))
            .values("count")
        )
        return self.annotate(
            last_run_pk=Subquery(runs.values("pk")[:1]),
            last_run_state=Subquery(runs.values("state")[:1]),
            last_run_queued_at=Subquery(runs.values("queued_at")[:1]),
            last_success_at=Subquery(successes.values("finished_at")[:1]),
            runs_last_day=Coalesce(Subquery(recent[:1], output_field=IntegerField()), 0),
        )

    def set_enabled(self, enabled: bool) -> int:
        """Enable or disable; re-enabling counts from now, so missed runs are not made
        up. Tells beat (PeriodicTasks.update_changed), which reloads within seconds."""
        now = timezone.now()
        changed = self.exclude(enabled=enabled)
        if enabled:
            count = changed.update(enabled=True, last_run_at=now, date_changed=now)
        else:
            count = changed.update(enabled=False, last_run_at=None, date_changed=now)
        PeriodicTasks.update_changed()
        return count


class Schedule(PeriodicTask):
    """A django-celery-beat PeriodicTask, with Switchyard's rules on it.

    `due_at` is the one answer to "when is this schedule due?" (preview.due_at, the DST
    rules of preview.py): beat's heap, the admin preview and change list, `manage.py
    schedules next`, /jobs/ and the alert sweep all ask it.
    """

    objects = ScheduleQuerySet.as_manager()

    class Meta:
        proxy = True

    def due_at(self, now: dt.datetime | None = None) -> dt.datetime | None:
        """When beat sends it next; before `now` if overdue, None if never again."""
        return preview.due_at(self, now or timezone.now())

    def next_run_at(self, now: dt.datetime | None = None) -> dt.datetime | None:
        """When it runs next as a page shows it (`now` if overdue); None if never again or
        broken (beat skips it)."""
        runs = self.upcoming(1, now)
        return runs[0] if runs else None

    def upcoming(self, count: int = 5, now: dt.datetime | None = None) -> list[dt.datetime]:
        """The next `count` run times; [] if never again or broken."""
        return preview.safe_upcoming_runs(self, now or timezone.now(), count) or []

    def problem(self, now: dt.datetime | None = None) -> str | None:
        """Why beat skips it ("broken"), or None."""
        return preview.schedule_problem(self, now or timezone.now())

    # What people do to a schedule (the admin's actions and `manage.py schedules`) -------

    def run_now(self, user=None, *, source: Source, label: str = "") -> Run:
        """Send the schedule's task once, now, with its arguments and execution options.

        A catalog job's stored parameters are validated again (ParameterError if the job
        changed since); the run records who asked and the schedule it came from.
        """
        problem = bounds.sending_problem(self)  # a row written by hand, e.g. kwargs not JSON
        if problem:
            field, _, message = problem.partition(": ")
            raise ParameterError({field: [message]})
        kwargs = _loads(self.kwargs, {})
        job = get_job(self.task)
        if job is not None:
            kwargs = clean_parameters(job, kwargs)
        return record_and_send(
            self.task, kwargs, args=_loads(self.args, []), source=source, user=user,
            label=label, schedule_name=self.name, options=self.execution_options(),
        )  # fmt: skip

    def execution_options(self) -> dict[str, Any]:
        """The PeriodicTask's own options, as beat would send them."""
        options: dict[str, Any] = {}
        for name in ("queue", "exchange", "routing_key", "priority"):
            if getattr(self, name) not in (None, ""):
                options[name] = getattr(self, name)
        if self.expire_seconds is not None:
            options["expires"] = self.expire_seconds
        elif self.expires is not None:
            options["expires"] = self.expires
        return options

    def set_enabled(self, enabled: bool) -> int:
        return Schedule.objects.filter(pk=self.pk).set_enabled(enabled)

    @transaction.atomic
    def duplicate(self) -> Schedule:
        """A disabled copy (same schedule, arguments and options) named 'NAME (copy)'."""
        options = ScheduleOptions.objects.filter(periodic_task_id=self.pk).first()
        copy = Schedule.objects.get(pk=self.pk)
        copy.pk = copy.id = None
        copy.name = unused_name(f"{bounds.one_line(self.name)} (copy)")  # no CR/LF carried
        copy.enabled = False
        copy.last_run_at, copy.total_run_count = None, 0
        copy.save()
        if options is not None:
            options.pk = None
            options.periodic_task = copy
            options.save()
        return copy

    def recent_runs(self, user, limit: int = 20):
        """The schedule's newest runs that `user` may see (Run.objects.visible_to)."""
        runs = Run.objects.visible_to(user).filter(schedule_name=self.name)
        return runs.select_related("requested_by")[:limit]


def unused_name(wanted: str) -> str:
    names = PeriodicTask.objects.filter(name__startswith=wanted).values_list("name", flat=True)
    taken = set(names)
    if wanted not in taken:
        return wanted
    return next(f"{wanted} {n}" for n in range(2, len(taken) + 3) if f"{wanted} {n}" not in taken)


def _loads(text: str | None, empty: Any) -> Any:
    return json.loads(text) if text else empty


def _is_email(text: str) -> bool:
    try:
        validate_email(text)
    except ValidationError:
        return False
    return "\n" not in text and "\r" not in text
