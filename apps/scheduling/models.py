from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import models
from django_celery_beat.models import PeriodicTask


class Overlap(models.TextChoices):
    ALLOW = "allow", "allow overlapping runs"
    SKIP = "skip", "skip while the previous run is still running"


class ScheduleOptions(models.Model):
    """Switchyard's rules for one django-celery-beat PeriodicTask."""

    periodic_task = models.OneToOneField(
        PeriodicTask, on_delete=models.CASCADE, related_name="switchyard"
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

    @property
    def recipients(self) -> list[str]:
        """The valid addresses (a row written by hand may hold anything)."""
        return [a.strip() for a in self.alert_recipients.split(",") if _is_email(a.strip())]


def _is_email(text: str) -> bool:
    try:
        validate_email(text)
    except ValidationError:
        return False
    return "\n" not in text and "\r" not in text
