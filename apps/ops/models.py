from urllib.parse import urlsplit

from django.db import models


class Heartbeat(models.Model):
    """The last sign of life of a long-running process (beat, sweepers)."""

    name = models.CharField(max_length=100, unique=True)
    seen_at = models.DateTimeField()
    detail = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"{self.name} at {self.seen_at:%Y-%m-%d %H:%M:%S}"


class Kind(models.TextChoices):
    FAILED_RUN = "failed_run", "run failed"
    MISSED_RUN = "missed_run", "schedule missed its run"
    BEAT_DOWN = "beat_down", "beat is not ticking"
    BROKEN_SCHEDULE = "broken_schedule", "schedule beat cannot run"


class Notice(models.TextChoices):
    NONE = "", "nothing sent yet"
    PROBLEM = "problem", "told it is failing"
    RECOVERY = "recovery", "told it recovered"


class IncidentQuerySet(models.QuerySet):
    def open(self):
        return self.filter(resolved_at__isnull=True)

    def visible_to(self, user):
        """Incidents about jobs whose runs this user may see (apps.jobs.permissions), and
        those about no job (beat down): the dashboard and the admin alike."""
        from apps.jobs.permissions import allowed_job_names, sees_all_runs

        if sees_all_runs(user):
            return self
        return self.filter(models.Q(job_name="") | models.Q(job_name__in=allowed_job_names(user)))


class Incident(models.Model):
    """Something that needs a person: a failing job, a missed schedule, beat down.

    One row per incident, not per occurrence: repeats raise `count`, and email goes out
    at most once per ALERT_MIN_INTERVAL_MINUTES (see apps.ops.alerts).
    """

    kind = models.CharField(max_length=16, choices=Kind.choices)
    key = models.CharField(max_length=255, help_text="Job name, schedule name or 'beat'.")
    title = models.CharField(max_length=300)
    detail = models.TextField(blank=True)
    job_name = models.CharField(max_length=255, blank=True)
    schedule_name = models.CharField(max_length=200, blank=True)
    opened_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    count = models.PositiveIntegerField(default=1)
    occurrence = models.CharField(
        max_length=100, blank=True, help_text="What was last seen (a due time), if not each."
    )
    last_notified_at = models.DateTimeField(null=True, blank=True)
    last_notice = models.CharField(max_length=16, choices=Notice.choices, blank=True)
    link = models.CharField(max_length=500, blank=True)  # a path on this site: see path

    objects = IncidentQuerySet.as_manager()

    class Meta:
        ordering = ["-opened_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "key"],
                condition=models.Q(resolved_at__isnull=True),
                name="one_open_incident_per_key",
            )
        ]
        indexes = [models.Index(fields=["kind", "key", "-opened_at"], name="incident_latest")]

    def __str__(self) -> str:
        state = "resolved" if self.resolved_at else "open"
        return f"{self.get_kind_display()}: {self.key} ({state})"

    @property
    def path(self) -> str:
        """The link as a path on this site, whatever address serves it. Older versions
        stored SITE_URL + path: those read as the same path here."""
        parts = urlsplit(self.link)
        local = parts._replace(scheme="", netloc="").geturl() if parts.netloc else self.link
        # A path here only: "//host/..." or "/\\host/..." would take a browser elsewhere.
        return "/" + local.lstrip("/\\")


class Cursor(models.Model):
    """How far a sweep has read; advanced with a conditional update to claim a batch."""

    name = models.CharField(max_length=100, unique=True)
    position = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} at {self.position:%Y-%m-%d %H:%M:%S}"
