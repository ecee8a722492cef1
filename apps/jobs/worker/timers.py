"""Drop cancelled time-limit timers from the worker's event loop, every 10 seconds.

With task time limits (CELERY_TASK_TIME_LIMIT / CELERY_TASK_SOFT_TIME_LIMIT), the
prefork pool puts two timers per task on the main process's event loop. When the task
ends they are cancelled, but kombu's Timer keeps cancelled entries in its heap until
they would have fired, 25 minutes later: at 100 tasks a second, 150,000 dead entries,
the main process growing by a megabyte every ~1,700 tasks before it levels off
(celery/celery#5200; bench/memory.py measures it). Rebuilding the heap without them
keeps the worker's memory flat.
"""

import heapq

from celery import signals
from kombu.asynchronous import get_event_loop

PRUNE_EVERY_SECONDS = 10.0


@signals.worker_ready.connect
def prune_cancelled_timers_regularly(**kwargs) -> None:
    hub = get_event_loop()
    if hub is not None:
        hub.call_repeatedly(PRUNE_EVERY_SECONDS, prune_cancelled, hub.timer)


def prune_cancelled(timer) -> int:
    """Remove cancelled entries from a kombu Timer's heap; return how many went."""
    queue = timer._queue  # kombu has no public way to drop them; its loop reads this list
    live = [item for item in queue if not item.entry.canceled]
    removed = len(queue) - len(live)
    if removed:
        heapq.heapify(live)
        queue[:] = live  # in place: the timer's running iterator holds this same list
    return removed
