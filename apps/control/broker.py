"""What control needs from the broker and the workers, with the timeouts of apps.jobs.inspect."""

import contextlib
import logging

from django.core.cache import cache
from kombu.exceptions import ChannelError

from apps.jobs import inspect, revalidating

from .rules import BrokerUnreachable

log = logging.getLogger(__name__)

CONSUMERS_KEY = "control:consumers"
CONSUMERS_SECONDS = 5
CONSUMERS_KEEP_SECONDS = 60  # an older answer is not shown: a page waits for a new one
DRAIN_LIMIT = 10_000_000  # a safety bound: purge reads at most this many messages


@contextlib.contextmanager
def reachable():
    """Any transport error inside means "the broker is unreachable" to a person."""
    try:
        yield
    except ChannelError:
        raise
    except Exception as exc:
        log.warning("broker unreachable: %s", exc)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise BrokerUnreachable(f"the broker is unreachable: {first}") from exc


def waiting(queue: str) -> int:
    """Messages waiting in the queue now (what a purge would drop)."""
    with reachable(), inspect.broker_connection() as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, timeout=inspect.TIMEOUT)
        return inspect.queue_depth(conn, queue)


def drain(queue: str) -> list[str]:
    """Take every waiting message off the queue; the task id each carried ("" for a
    message that is not a Celery task's).

    Reading the messages one by one (not the broker's purge) says exactly which runs
    lost their message, on Redis and AMQP alike."""
    with reachable(), inspect.broker_connection() as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, timeout=inspect.TIMEOUT)
        return _drain(conn, queue)


def _drain(conn, queue: str) -> list[str]:
    task_ids = []
    with conn.channel() as channel:
        while len(task_ids) < DRAIN_LIMIT:
            try:
                message = channel.basic_get(queue, no_ack=True)
            except ChannelError:
                break  # no such queue (AMQP)
            if message is None:
                break
            task_ids.append(task_id_of(message))
    return task_ids


def task_id_of(message) -> str:
    """Celery's protocol 2 keeps the id in the headers, protocol 1 in the body."""
    task_id = (message.headers or {}).get("id")
    if not task_id:
        try:
            body = message.decode()
        except Exception:  # a message we cannot read still counts as dropped
            body = None
        task_id = body.get("id") if isinstance(body, dict) else None
    return str(task_id)[:255] if task_id else ""


def alive_workers() -> set[str]:
    """The workers that answered the dashboard's last inspection (at most a few s old)."""
    return inspect.snapshot().worker_names


def answers(worker: str) -> bool:
    """Does this worker answer a ping now (for a worker newer than the last inspection)?
    Raises BrokerUnreachable: then nobody can tell."""
    with reachable():
        replies = inspect.broadcast("ping", reply=True, destination=[worker])
    return worker in inspect.by_worker(replies)


def consumers() -> dict[str, list[str]]:
    """Each queue and the workers consuming it (inspect active_queues). The answer is
    fresh for CONSUMERS_SECONDS, then shown while a thread asks again
    (apps/jobs/revalidating.py): a page waits for the workers only when nothing is kept,
    never for the full inspection that finds new workers once a minute."""
    return revalidating.cached(CONSUMERS_KEY, _ask_consumers, fresh_for=CONSUMERS_SECONDS,
                               keep_for=CONSUMERS_KEEP_SECONDS)  # fmt: skip


def _ask_consumers() -> dict[str, list[str]]:
    try:
        # Stop waiting once the workers of the last full inspection answered.
        replies = inspect.broadcast("active_queues", reply=True, limit=inspect.expected_workers())
    except inspect.BrokerDown as exc:  # the broker is down: nobody is known to consume
        log.warning("could not ask workers for their queues: %s", exc)
        replies = []
    found: dict[str, list[str]] = {}
    for worker, queues in inspect.by_worker(replies).items():
        for queue in queues or ():
            found.setdefault(queue.get("name", ""), []).append(worker)
    return found


def forget_consumers() -> None:
    cache.delete(CONSUMERS_KEY)


def forget_snapshot() -> None:
    """After an action, the next page asks the broker again (queue depths, workers)."""
    cache.delete(inspect.CACHE_KEY)
