"""Signs of life: beat's (apps.scheduling.signals.beat_alive) and each worker's
(apps.jobs.inspect.workers_answered), recorded by the receivers OpsConfig connects."""

import logging
from datetime import datetime, timedelta

from django.db import DatabaseError
from django.utils import timezone

from .models import Heartbeat

log = logging.getLogger(__name__)

WORKER_PREFIX = "worker:"


def record(name: str, **detail) -> None:
    Heartbeat.objects.update_or_create(
        name=name, defaults={"seen_at": timezone.now(), "detail": detail}
    )


def age(name: str) -> timedelta | None:
    seen = Heartbeat.objects.filter(name=name).values_list("seen_at", flat=True).first()
    return timezone.now() - seen if seen else None


def beat_alive(sender, leader: str, **kwargs) -> None:
    record("beat", leader=leader)


def remember_workers(sender, workers, **kwargs) -> None:
    try:
        for worker in workers:
            record(WORKER_PREFIX + worker.name, concurrency=worker.concurrency)
    except DatabaseError:
        log.warning("could not record worker heartbeats", exc_info=True)


def last_seen(within: timedelta = timedelta(days=1)) -> dict[str, datetime]:
    """When each worker last answered an inspection, for workers seen recently."""
    since = timezone.now() - within
    rows = Heartbeat.objects.filter(name__startswith=WORKER_PREFIX, seen_at__gte=since)
    return {name.removeprefix(WORKER_PREFIX): seen for name, seen in
            rows.values_list("name", "seen_at")}  # fmt: skip
