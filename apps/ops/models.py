from django.db import models


class Heartbeat(models.Model):
    """The last sign of life of a long-running process (beat, sweepers)."""

    name = models.CharField(max_length=100, unique=True)
    seen_at = models.DateTimeField()
    detail = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"{self.name} at {self.seen_at:%Y-%m-%d %H:%M:%S}"
