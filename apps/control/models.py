"""What operators set (paused queues, run-time rate limits) and what they did (actions).

Workers read QueuePause and RateLimit when they start (apps/control/worker.py), so a
pause or a limit outlives worker restarts; the broadcasts only reach workers alive now.
"""

from django.conf import settings
from django.db import models

from apps.jobs.catalog import MAX_QUEUE_NAME


class QueuePause(models.Model):
    """A queue no worker takes new messages from while this row exists."""

    queue = models.CharField(max_length=MAX_QUEUE_NAME, unique=True)
    paused_at = models.DateTimeField(auto_now_add=True)
    paused_by = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["queue"]

    def __str__(self) -> str:
        return self.queue


class RateLimit(models.Model):
    """A job's rate limit set at run time (Celery's format: `10/m`); per worker."""

    job_name = models.CharField(max_length=200, unique=True)
    rate = models.CharField(max_length=20)
    set_at = models.DateTimeField(auto_now=True)
    set_by = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["job_name"]

    def __str__(self) -> str:
        return f"{self.job_name}: {self.rate}"


class Via(models.TextChoices):
    WEB = "web"
    API = "api"
    CLI = "cli"


class ControlAction(models.Model):
    """One control action as it was done: the single record every entry point writes
    (apps/control/actions.py); the audit log reads these."""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    label = models.CharField(max_length=150, blank=True, help_text="who, as shown")
    via = models.CharField(max_length=3, choices=Via.choices)
    action = models.CharField(max_length=40)
    target = models.CharField(max_length=200)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at"]
        permissions = [
            ("control_queues",
             "Can pause, resume and purge queues, steer workers and set rate limits"),
        ]  # fmt: skip

    def __str__(self) -> str:
        return f"{self.action} {self.target} by {self.label} via {self.via}"
