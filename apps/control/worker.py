"""In the worker: honour stored pauses and rate limits from the moment it starts.

- `StoredControls` (a worker bootstep; all worker steps are built before the consumer
  exists) notes the queues this worker is configured for (`-Q`, or all), leaves the
  paused ones out of its selection and sets the stored rate limits on the task
  registry. The task consumer is then created without the paused queues: nothing is
  taken from them, not even for a moment.
- `Resync` (a consumer bootstep, after remote control listens and before the event loop
  delivers anything) reads the stored state again, closing the window in which a pause
  or resume was broadcast while the worker was starting; it runs again whenever the
  consumer restarts (a broker outage, when broadcasts are missed).
- `switchyard_pause` and `switchyard_resume` (remote-control commands) are
  cancel_consumer and add_consumer for the workers configured for the queue only (a
  worker started with `-Q other` is not added to it). Celery runs a consumer change
  later (`call_soon`, in no guaranteed order: the event loop keeps a set), so each
  command notes the latest wish for the queue and the deferred change applies that
  wish when it runs: a pause then a resume always ends consuming, whichever deferred
  change runs first.
"""

import logging

from celery import bootsteps
from celery.worker.control import control_command, ok

log = logging.getLogger(__name__)

_configured: set[str] = set()  # the queues this worker was started for
_limited: set[str] = set()  # tasks given a stored rate limit in this process
_wanted: dict[str, bool] = {}  # queue -> consume it? (the last pause or resume received)


class StoredControls(bootsteps.Step):
    name = "switchyard-stored-controls"

    def __init__(self, worker, **kwargs) -> None:
        queues = worker.app.amqp.queues
        _configured.update(queues.consume_from)
        paused = stored_pauses()
        if paused:
            log.warning("queues paused, not consumed: %s", ", ".join(sorted(paused)))
            queues.deselect(sorted(paused & set(queues.consume_from)))
        apply_rate_limits(worker.app)
        _close_connection()
        super().__init__(worker, **kwargs)


class Resync(bootsteps.StartStopStep):
    name = "switchyard-resync"
    requires = ("celery.worker.consumer.control:Control",)

    def start(self, consumer) -> None:
        sync_queues(consumer)
        apply_rate_limits(consumer.app)
        consumer.reset_rate_limits()
        _close_connection()


def _close_connection() -> None:
    """The worker's main process reads a few rows at start; it keeps no idle session
    (its pool processes open their own)."""
    from django.db import connection

    if not connection.in_atomic_block:
        connection.close()


def stored_pauses() -> set[str]:
    from .models import QueuePause

    try:
        return set(QueuePause.objects.values_list("queue", flat=True))
    except Exception:  # the database is down: the next consumer start reads them again
        log.exception("could not read paused queues")
        return set()


def stored_rate_limits() -> dict[str, str] | None:
    from .rules import stored_rate_limits

    try:
        return stored_rate_limits()
    except Exception:
        log.exception("could not read rate limits")
        return None


def apply_rate_limits(app) -> None:
    """Stored limits on the registry; a limit cleared since goes back to the code's."""
    limits = stored_rate_limits()
    if limits is None:
        return
    for name in _limited - set(limits):
        if name in app.tasks:
            app.tasks[name].rate_limit = type(app.tasks[name]).rate_limit
    for name, rate in limits.items():
        if name in app.tasks:
            app.tasks[name].rate_limit = rate
    _limited.clear()
    _limited.update(limits)


def sync_queues(consumer) -> None:
    paused = stored_pauses()
    consuming = set(consumer.app.amqp.queues.consume_from)
    _wanted.update({queue: queue not in paused for queue in _configured})
    for queue in sorted(_configured & paused & consuming):
        consumer.cancel_task_queue(queue)
    for queue in sorted(_configured - paused - consuming):
        consumer.add_task_queue(queue)


@control_command(args=[("queue", str)], signature="<queue>")
def switchyard_pause(state, queue: str, **kwargs):
    """cancel_consumer."""
    return _want(state.consumer, queue, False)


@control_command(args=[("queue", str)], signature="<queue>")
def switchyard_resume(state, queue: str, **kwargs):
    """add_consumer, if this worker was started for the queue."""
    return _want(state.consumer, queue, True)


def _want(consumer, queue: str, consume: bool) -> dict:
    if consume and queue not in _configured:
        return ok(f"not configured for {queue}")
    _wanted[queue] = consume
    consumer.call_soon(_apply_wish, consumer, queue)
    return ok(f"{'add' if consume else 'cancel'} consumer {queue}")


def _apply_wish(consumer, queue: str) -> None:
    """Run by the event loop after the command: the latest wish, not this call's own."""
    consuming = queue in (consumer.app.amqp.queues.consume_from or {})
    if _wanted.get(queue, True):
        consumer.add_task_queue(queue)  # a no-op for a queue consumed already
    elif consuming:
        consumer.cancel_task_queue(queue)
