from __future__ import annotations

import datetime as dt

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import models
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from django_celery_beat.querysets import PeriodicTaskQuerySet

from . import bounds, preview

#: What reading a schedule's due time needs, in one query.
SCHEDULE_RELATED = ("interval", "crontab", "solar", "clocked", "options")


class Overlap(models.TextChoices):
    ALLOW = "allow", "allow overlapping runs"
    SKIP = "skip", "skip while the previous run is still running"


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
        """Its own bounds (bounds.py): the admin form and `manage.py schedules add` both
        call full_clean(); beat and the alert sweep ask bounds.row_problem of stored rows."""
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


def _is_email(text: str) -> bool:
    try:
        validate_email(text)
    except ValidationError:
        return False
    return "\n" not in text and "\r" not in text
