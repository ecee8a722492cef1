"""`make_*` helpers for the beat tests: schedules, an in-process scheduler, a lease."""

import json
import uuid
from datetime import timedelta

from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from apps.scheduling.lease import Lease, redis_client
from apps.scheduling.schedulers import SwitchyardScheduler
from project import celery_app


def make_queue_name() -> str:
    """A queue no worker consumes: what beat sent stays there to be counted."""
    return f"test-beat-{uuid.uuid4().hex[:8]}"


def make_schedule(name: str, *, every: int = 60, due_in: float | None = None, **kw):
    """An interval schedule of apps.demo.tasks.add; `due_in` seconds from now sets its
    last run (negative: overdue)."""
    interval, _ = IntervalSchedule.objects.get_or_create(every=every, period="seconds")
    if due_in is not None:
        kw.setdefault("last_run_at", timezone.now() - timedelta(seconds=every - due_in))
    kw.setdefault("task", "apps.demo.tasks.add")
    kw.setdefault("kwargs", json.dumps({"x": 1, "y": 2}))
    return PeriodicTask.objects.create(name=name, interval=interval, **kw)


def make_lease(key: str | None = None, ttl: float = 15) -> Lease:
    return Lease(redis_client(), key or f"test:beat:{uuid.uuid4().hex}", ttl)


def make_scheduler(lease: Lease | None = None, **kw) -> SwitchyardScheduler:
    scheduler = SwitchyardScheduler(app=celery_app, lease=lease or make_lease(), **kw)
    scheduler.change_check_every = 0  # every tick: the tests change rows in between
    return scheduler


def queued_messages(queue: str) -> list[dict]:
    """The messages waiting in a Redis queue, oldest first."""
    raw = redis_client().lrange(queue, 0, -1)
    return [json.loads(item) for item in reversed(raw)]
