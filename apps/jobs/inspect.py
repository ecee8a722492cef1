"""Ask the broker and the workers how they are: with timeouts, remembered briefly.

Every broker call here gives up after TIMEOUT seconds, and the answer (good or bad)
is kept: fresh for CACHE_SECONDS, then shown while a thread asks again, so a dead
broker makes pages say so instead of hanging, a dashboard polled by several people
asks the workers once per few seconds, and no page waits for their answers.

Every remote-control command of the web process (pages, API, CLI) goes through
`broadcast`: published and answered on one short-timeout connection (Celery's own
`control.broadcast` publishes on the app's pooled connections, whose socket timeout is
5 s), and not tried at all while the broker failed in the last few seconds
(`sending.broker_recently_down`, the back-off the dispatcher uses too).
"""

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from celery import current_app
from django.core.cache import cache
from django.dispatch import Signal
from django.utils import timezone
from kombu import Connection, Producer
from kombu.exceptions import ChannelError

from apps.jobs import liveness, revalidating, sending
from apps.jobs.catalog import queue_names

log = logging.getLogger(__name__)

TIMEOUT = 1.0
CACHE_SECONDS = 5
KEEP_SECONDS = 60  # an older snapshot is not shown: a page waits for a new one
CACHE_KEY = "ops:broker-snapshot"
QUICK_CACHE_KEY = "ops:broker-first-answer"
KNOWN_KEY = "ops:known-workers"
FULL_EVERY = 60  # seconds between inspections that wait the whole TIMEOUT

# Sent after each inspection the broker answered: workers= the Worker tuples that
# replied (apps.ops keeps them as heartbeats, for the dashboard's "last seen").
workers_answered = Signal()


@dataclass(frozen=True)
class Worker:
    name: str
    concurrency: int | None = None
    pid: int | None = None
    uptime: int | None = None


@dataclass(frozen=True)
class Snapshot:
    """What the broker and the workers said at `taken_at`."""

    taken_at: datetime
    broker_ok: bool
    error: str = ""
    workers: tuple[Worker, ...] = ()
    queues: dict[str, int] = field(default_factory=dict)

    @property
    def worker_names(self) -> set[str]:
        return {w.name for w in self.workers}


def snapshot(*, refresh: bool = False) -> Snapshot:
    """The kept snapshot, or with `refresh` (or none kept) a new one, which takes at
    most about 2 x TIMEOUT seconds. One older than CACHE_SECONDS is returned as it is
    while a thread takes the next (apps/jobs/revalidating.py): a page never waits for
    the workers' answers once one was kept."""
    if refresh:
        return revalidating.store(CACHE_KEY, _take(), KEEP_SECONDS)
    return revalidating.cached(CACHE_KEY, _take, fresh_for=CACHE_SECONDS,
                               keep_for=KEEP_SECONDS)  # fmt: skip


def _take() -> Snapshot:
    limit = expected_workers()
    taken = take_snapshot(limit)
    _expect(taken, full=limit is None)
    return taken


def expected_workers() -> int | None:
    """How many workers to wait for: the count of the last full inspection, so a
    refresh returns once they all answered instead of waiting out TIMEOUT. In a process
    that has not looked yet (just started), the workers any process heard from lately
    (their heartbeats), so its first page does not wait out TIMEOUT either. None (wait
    the whole TIMEOUT) when nothing is known, or every FULL_EVERY seconds, so new
    workers are found."""
    known = cache.get(KNOWN_KEY)
    if not known:
        return len(liveness.seen_lately(timedelta(seconds=2 * FULL_EVERY))) or None
    if time.time() - known[1] > FULL_EVERY:
        return None
    return known[0] or None


def _expect(taken: Snapshot, *, full: bool) -> None:
    if not taken.broker_ok:
        cache.delete(KNOWN_KEY)
        return
    known = cache.get(KNOWN_KEY)
    full_at = time.time() if full or not known else known[1]
    cache.set(KNOWN_KEY, (len(taken.workers), full_at), None)


def first_answer() -> Snapshot:
    """For /readyz: the full snapshot if cached, else one that stops at the first
    worker's answer (milliseconds when a worker is up, not the whole TIMEOUT)."""
    cached = revalidating.peek(CACHE_KEY, CACHE_SECONDS) or cache.get(QUICK_CACHE_KEY)
    if cached is not None:
        return cached
    taken = take_snapshot(limit=1)
    cache.set(QUICK_CACHE_KEY, taken, CACHE_SECONDS)
    return taken


def take_snapshot(limit: int | None = None) -> Snapshot:
    """Ask the broker for queue depths and the workers for their stats; with `limit`,
    stop waiting once that many workers answered."""
    now = timezone.now()
    try:
        with connected() as conn:
            queues = queue_depths(conn, queue_names())
            workers = ask_workers(conn, limit)
    except BrokerDown as exc:  # any transport error means "unreachable" to a person
        return Snapshot(taken_at=now, broker_ok=False, error=str(exc))
    workers_answered.send(sender=Snapshot, workers=workers)
    return Snapshot(taken_at=now, broker_ok=True, workers=workers, queues=queues)


class BrokerDown(Exception):
    """The broker did not answer within TIMEOUT, or did not a moment ago."""


def broker_connection() -> Connection:
    return current_app.connection_for_write(
        connect_timeout=TIMEOUT,
        transport_options={"socket_connect_timeout": TIMEOUT, "socket_timeout": TIMEOUT},
    )


@contextlib.contextmanager
def connected() -> Iterator[Connection]:
    """A short-timeout connection that answered just now. Raises BrokerDown on any
    transport error inside, and at once, without trying, while the broker failed in
    the last sending.BROKER_BACKOFF_SECONDS (so a page polled while it is down does
    not wait again and again); the outcome feeds that back-off."""
    if sending.broker_recently_down():
        raise BrokerDown("no answer a moment ago (not asked again yet)")
    try:
        with broker_connection() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=TIMEOUT)
            yield conn
    except Exception as exc:
        log.warning("broker unreachable: %s", exc)
        sending.note_broker(up=False)
        raise BrokerDown(_one_line(exc)) from exc
    sending.note_broker(up=True)


def broadcast(command: str, *, reply: bool = False, **options) -> list[dict]:
    """Send one remote-control command (Celery's `control.broadcast` options:
    arguments, destination, timeout, limit) on a connection of its own; the replies
    when `reply`. Raises BrokerDown."""
    with connected() as conn:
        return send(conn, command, reply=reply, **options)


def send(
    conn: Connection,
    command: str,
    *,
    arguments: dict | None = None,
    destination: list[str] | None = None,
    reply: bool = False,
    timeout: float | None = None,
    limit: int | None = None,
) -> list[dict]:
    """Publish on `conn` and wait there for replies (up to `timeout`, default TIMEOUT):
    Celery's `control.broadcast` would publish on the app's pooled connections."""
    mailbox = current_app.control.mailbox(conn)
    mailbox.producer_pool = _OnConnection(conn)  # not a producer from the app's pool
    timeout = TIMEOUT if timeout is None else timeout
    replies = mailbox._broadcast(command, arguments or {}, destination, reply, timeout, limit)
    return replies or []


class _NoRetryProducer(Producer):
    def publish(self, body, **options):
        # kombu's Mailbox publishes with retry=True and no retry policy: a broker cut off
        # between connecting and publishing would hold the request for ever, reconnecting.
        options["retry"] = False
        return super().publish(body, **options)


class _OnConnection:
    """In place of the app's producer pool: one producer on `conn`, without retries."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def acquire(self, block: bool = True):
        producer = _NoRetryProducer(self.conn.default_channel, auto_declare=False)
        return contextlib.nullcontext(producer)


def revoke(task_ids: str | list[str], *, terminate: bool = False, signal: str = "SIGTERM") -> bool:
    """Tell every worker to skip these tasks (with `terminate`, to stop them if running):
    Celery's `control.revoke`, through `broadcast`. False (logged) when the broker is
    unreachable: a revoked run's record says cancelled all the same."""
    arguments = {"task_id": task_ids, "terminate": terminate, "signal": signal}
    try:
        broadcast("revoke", arguments=arguments)
    except BrokerDown as exc:
        log.warning("revoke of %s not broadcast: %s", task_ids, exc)
        return False
    return True


def by_worker(replies: list[dict]) -> dict[str, object]:
    """Celery's replies ([{worker: answer}, ...]) as one {worker: answer}."""
    return {name: answer for one in replies for name, answer in one.items()}


def ping_workers() -> set[str] | None:
    """Names of the workers that answer a remote-control ping within TIMEOUT (each a
    sign of life: `workers_answered`); None when the broker cannot be reached."""
    try:
        names = set(by_worker(broadcast("ping", reply=True)))
    except BrokerDown:  # no answer from anyone: judge no one
        return None
    workers_answered.send(sender=Snapshot, workers=tuple(Worker(name) for name in sorted(names)))
    return names


def ask_workers(conn: Connection, limit: int | None = None) -> tuple[Worker, ...]:
    replies = by_worker(send(conn, "stats", reply=True, limit=limit))
    return tuple(sorted((_worker(name, stats) for name, stats in replies.items()),
                        key=lambda w: w.name))  # fmt: skip


def _worker(name: str, stats: dict) -> Worker:
    pool = stats.get("pool") or {}
    return Worker(
        name=name,
        concurrency=pool.get("max-concurrency"),
        pid=stats.get("pid"),
        uptime=stats.get("uptime"),
    )


def queue_depths(conn: Connection, names: list[str]) -> dict[str, int]:
    return {name: queue_depth(conn, name) for name in names}


def queue_depth(conn: Connection, name: str) -> int:
    """Messages waiting; a passive declare works on Redis and AMQP alike."""
    try:
        with conn.channel() as channel:
            return channel.queue_declare(queue=name, passive=True).message_count
    except ChannelError:
        return 0  # the queue does not exist yet (Redis: an empty list is no key)


def _one_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]
