"""Plain helpers shared by the tests: waiting, and `make_*` factories."""

import time

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.05):
    """Poll until predicate() is truthy; return its value or fail after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {predicate}")


def make_user(username: str = "alice", *, staff: bool = True, jobs: tuple[str, ...] = (), **kw):
    kw.setdefault("is_staff", staff)
    user = get_user_model().objects.create_user(username, f"{username}@example.com", "pw", **kw)
    for job_name in jobs:
        user.user_permissions.add(Permission.objects.get(codename=f"run_{job_name}"))
    return user


def make_superuser(username: str = "root"):
    return get_user_model().objects.create_superuser(username, f"{username}@example.com", "pw")


def point_celery_at(url: str) -> None:
    """Switch the test process's Celery app to another broker, dropping old pools."""
    from apps.jobs import sending
    from project import celery_app

    celery_app.conf.broker_url = url
    celery_app._pool = None  # not closed: kombu's producer pools may still hold it
    celery_app.amqp._producer_pool = None
    # Remote control keeps the producer pool it first published with (a cached property of
    # the mailbox, set when the session's in-process worker first answered): without this,
    # broadcasts (add_consumer, inspect, revoke) still went to the old broker.
    del celery_app.control.mailbox.producer_pool
    sending.note_broker(up=True)  # a failure on the last broker says nothing of this one


def make_run(job_name: str = "apps.demo.tasks.add", **kw):
    """A run record as the dispatcher would write it, without sending anything."""
    import uuid

    from django.utils import timezone

    from apps.jobs.models import Run, Source, State

    kw.setdefault("task_id", str(uuid.uuid4()))
    kw.setdefault("source", Source.WEB)
    kw.setdefault("state", State.QUEUED)
    kw.setdefault("queued_at", timezone.now())
    return Run.objects.create(job_name=job_name, **kw)
