"""Workers keep their database connections between tasks, as Django does between requests.

Celery's Django fixup closes every connection before and after each task unless
CELERY_DB_REUSE_MAX is set: a new PostgreSQL connection (a forked server process) per
task was most of the stock result backend's cost. Settings put that count out of reach,
and this handler applies Django's own rule before each task instead, as Django does when
a request starts: close a connection that is in error or older than CONN_MAX_AGE; with
CONN_HEALTH_CHECKS the task's first query checks that a reused connection still works,
so a restarted PostgreSQL costs one reconnect, not a broken worker. On PostgreSQL that
check costs no round trip while the server has said nothing on the connection
(project/postgresql: Django's `SELECT 1` had been a sixth of a short task's time).

Connected before apps.jobs.worker.recording's handlers (apps.py imports this module first), so
whatever they and the result backend write goes through a checked connection.
"""

from celery import signals
from django.db import close_old_connections


@signals.task_prerun.connect
def close_old_connections_before_task(task=None, **kwargs) -> None:
    # An eager task runs inside its caller (a request, a test, perhaps inside atomic()):
    # those connections are the caller's to manage.
    if _is_eager(task):
        return
    close_old_connections()


def _is_eager(task) -> bool:
    return task is not None and getattr(task.request, "is_eager", False)
