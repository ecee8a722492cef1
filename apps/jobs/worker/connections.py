"""Workers keep their database connections between tasks, as Django does between requests.

Celery's Django fixup closes every connection before and after each task unless
CELERY_DB_REUSE_MAX is set: a new PostgreSQL connection (a forked server process) per
task was most of the stock result backend's cost. Settings put that count out of reach,
and this handler applies Django's own rule before each task instead, as Django does when
a request starts: close a connection that is in error or older than CONN_MAX_AGE; with
CONN_HEALTH_CHECKS the task's first query checks that a reused connection still works,
so a restarted PostgreSQL costs one reconnect, not a broken worker.

The check (a `SELECT 1` round trip) is skipped for a connection the result backend
wrote through less than FRESH_SECONDS ago without an error (`note_used`, called by
apps.jobs.worker.backend after each statement): a busy worker would otherwise pay it on every
task (a sixth of a short task's time, docs/performance.md), to guard against what only
happens to idle connections. A connection that died within that second fails the next
statement instead; the result backend retries its writes on a new connection, and a
job's own query fails as it would have a moment later anyway.

Connected before apps.jobs.worker.recording's handlers (apps.py imports this module first), so
whatever they and the result backend write goes through a checked connection.
"""

import time

from celery import signals
from django.db import close_old_connections, connections

FRESH_SECONDS = 1.0


@signals.task_prerun.connect
def close_old_connections_before_task(task=None, **kwargs) -> None:
    # An eager task runs inside its caller (a request, a test, perhaps inside atomic()):
    # those connections are the caller's to manage.
    if _is_eager(task):
        return
    close_old_connections()
    now = time.monotonic()
    for connection in connections.all(initialized_only=True):
        fresh = getattr(connection, "switchyard_fresh_until", 0.0) > now
        if fresh and connection.connection is not None and not connection.errors_occurred:
            connection.health_check_done = True


def note_used(connection) -> None:
    """`connection` just ran a statement successfully: no health check for a second."""
    connection.switchyard_fresh_until = time.monotonic() + FRESH_SECONDS


def _is_eager(task) -> bool:
    return task is not None and getattr(task.request, "is_eager", False)
