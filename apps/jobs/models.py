from django.conf import settings
from django.db import models
from django.urls import reverse


class Source(models.TextChoices):
    WEB = "web"
    ADMIN = "admin"
    API = "api"
    CLI = "cli"
    SCHEDULE = "schedule"
    SHELL = "shell"


class State(models.TextChoices):
    PENDING_SEND = "pending_send", "waiting to be sent"
    QUEUED = "queued"
    STARTED = "started"
    PROGRESS = "progress"
    RETRYING = "retrying"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"


FINISHED_STATES = (State.SUCCEEDED, State.FAILED, State.CANCELLED, State.SKIPPED)
ACTIVE_STATES = (State.QUEUED, State.STARTED, State.PROGRESS, State.RETRYING)


class RunQuerySet(models.QuerySet):
    def active(self):
        return self.filter(state__in=ACTIVE_STATES)

    def finished(self):
        return self.filter(state__in=FINISHED_STATES)

    def visible_to(self, user):
        """Runs of the jobs this user may run, and the runs they started themselves."""
        from .permissions import allowed_job_names, sees_all_runs

        if sees_all_runs(user):
            return self

        return self.filter(
            models.Q(job_name__in=allowed_job_names(user)) | models.Q(requested_by=user)
        )


class Run(models.Model):
    """One dispatch of a job, recorded before its message reaches the broker.

    The django-celery-results row with the same task_id holds Celery's own view
    (result, traceback, worker); this row holds who asked, from where, and the state
    a person sees, kept current by the worker's signals.
    """

    task_id = models.CharField(max_length=255, unique=True)
    job_name = models.CharField(max_length=255)
    parameters = models.JSONField(default=dict, blank=True)
    args = models.JSONField(default=list, blank=True)
    source = models.CharField(max_length=16, choices=Source.choices)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    requested_by_label = models.CharField(max_length=200, blank=True)
    schedule_name = models.CharField(max_length=200, blank=True)
    queue = models.CharField(max_length=200, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    queued_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    retries = models.PositiveIntegerField(default=0)
    deliveries = models.PositiveIntegerField(default=0)
    send_attempts = models.PositiveIntegerField(default=0)
    progress_done = models.FloatField(null=True, blank=True)
    progress_total = models.FloatField(null=True, blank=True)
    progress_message = models.CharField(max_length=500, blank=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    rerun_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="reruns"
    )
    idempotency_key = models.CharField(max_length=64, null=True, blank=True, unique=True)
    note = models.TextField(blank=True)

    objects = RunQuerySet.as_manager()

    class Meta:
        ordering = ["-queued_at", "-id"]
        indexes = [
            models.Index(fields=["-queued_at", "-id"], name="run_newest"),
            models.Index(fields=["job_name", "-queued_at"], name="run_job_newest"),
            models.Index(fields=["state", "-queued_at"], name="run_state_newest"),
            models.Index(fields=["source", "-queued_at"], name="run_source_newest"),
            models.Index(fields=["requested_by", "-queued_at"], name="run_user_newest"),
            models.Index(fields=["schedule_name", "-queued_at"], name="run_schedule_newest"),
        ]
        permissions = [("view_all_runs", "Can see every run")]

    def __str__(self) -> str:
        return f"{self.job_name} [{self.task_id}]"

    def get_absolute_url(self) -> str:
        return reverse("jobs:run", args=[self.pk])

    @property
    def is_finished(self) -> bool:
        return self.state in FINISHED_STATES

    @property
    def percent(self) -> int | None:
        if not self.progress_total:
            return None
        return max(0, min(100, round(100 * (self.progress_done or 0) / self.progress_total)))

    @property
    def wait_time(self):
        return self.started_at - self.queued_at if self.started_at else None

    @property
    def run_time(self):
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None

    @property
    def who(self) -> str:
        if self.requested_by_id:
            return self.requested_by.get_username()
        return self.requested_by_label or "unknown"
