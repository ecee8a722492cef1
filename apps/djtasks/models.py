from django.db import models


class SendOptions(models.Model):
    """What a Tasks API enqueue asked for beyond the run record: a priority and an
    earliest start. A run sent again later (by the sweeper after the broker was down,
    or resent by hand) is sent with them; the worker deletes the row when the run ends.
    """

    task_id = models.CharField(max_length=255, unique=True)
    priority = models.PositiveSmallIntegerField(null=True, blank=True)
    eta = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"send options of {self.task_id}"
