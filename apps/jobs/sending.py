"""Writing run records and publishing their messages: one statement per run, and
messages sent together when a transaction commits.

A run is always committed before its message is published, and written `queued` at
once: the publish is not followed by a second statement. Only a publish that fails
costs one more (`Run.objects.publish_failed()`: back to `pending_send`, which the
sweeper sends once the broker is back).

- `insert_run(run)`: one run's INSERT as a prepared statement on PostgreSQL (parsed and
  planned once per connection), without the ORM's per-save work.
- `guard_publishing(app)` wraps Celery's `send_task_message`, where `apply_async`,
  `send_task`, `group` and `chunks` all publish. Inside the guard, the
  `before_task_publish` handler (worker/recording.py) writes the run `queued`
  (`written_queued`), and the guard sets it back to `pending_send` if the publish
  raises. Without the guard the handler writes `pending_send` and the
  `after_task_publish` handler marks it queued, as before.
- Inside `transaction.atomic()`, a guarded publish (a `.delay()` in a transaction) is
  not made at once: its run is written in the transaction, and its message is kept
  (`_Capture`) and published when the transaction commits, together with every other
  message of that transaction, on one producer in pipelined chunks (`after_commit`). A
  transaction rolled back publishes nothing; a savepoint rolled back drops its runs'
  messages (only messages whose runs exist at commit are sent).
"""

import functools
import logging
import time
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass

from celery import current_app
from celery.app.amqp import AMQP
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, transaction
from kombu.utils.imports import symbol_by_name

from .models import Run, State

log = logging.getLogger(__name__)

# Task ids whose runs the before_task_publish handler wrote `queued` inside the guard.
_guarded: ContextVar[list[str] | None] = ContextVar("guarded", default=None)
# True while a batch is published after commit (its messages are not deferred again).
_flushing: ContextVar[bool] = ContextVar("flushing", default=False)
# Messages per Redis pipeline when many are published together.
CHUNK = 100


# One run's INSERT -----------------------------------------------------------------------


def insert_run(run: Run, *, ignore_conflicts: bool = False, using: str = DEFAULT_DB_ALIAS):
    """Write `run` with one INSERT (prepared on PostgreSQL); set its pk. Raises
    IntegrityError on a taken task id or idempotency key unless `ignore_conflicts`."""
    connection = connections[using]
    fields = _insert_fields()
    params = [_db_value(field, getattr(run, field.attname), connection) for field in fields]
    returning = connection.features.can_return_columns_from_insert
    no_flush = returning and _may_skip_flush(run, connection)
    sql = _insert_text(using, ignore_conflicts, returning, no_flush)
    if connection.vendor == "postgresql":
        from .worker.backend import execute_prepared

        row = execute_prepared(connection, sql, params)[1]
    else:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone() if cursor.description else None
    if row:
        run.pk = row[0]
        run._state.adding, run._state.db = False, using


@functools.cache
def _insert_fields() -> tuple:
    return tuple(f for f in Run._meta.concrete_fields if not f.primary_key)


def _db_value(field, value, connection):
    if value is None or type(value) in (str, int):
        return value
    return field.get_db_prep_save(value, connection)


@functools.cache
def _insert_text(alias: str, ignore_conflicts: bool, returning: bool, no_flush: bool) -> str:
    """Built once: only quoted names from the model's meta in it. `no_flush`: the
    statement also turns synchronous_commit off for its own transaction (set_config's
    `is_local`), which its commit then honours: one statement, one round trip."""
    quote = connections[alias].ops.quote_name
    columns = ", ".join(quote(f.column) for f in _insert_fields())
    values = ", ".join(["%s"] * len(_insert_fields()))
    sql = f"INSERT INTO {quote(Run._meta.db_table)} ({columns}) VALUES ({values})"  # noqa: S608
    if ignore_conflicts:
        sql += " ON CONFLICT DO NOTHING"
    if not returning:
        return sql
    sql += f" RETURNING {quote(Run._meta.pk.column)}"
    return sql + (", set_config('synchronous_commit', 'off', true)" if no_flush else "")


# Run records that commit without waiting for their WAL flush (RUN_RECORDS_ASYNC_COMMIT).
#
# Only runs written `queued`, in a transaction of their own: such a run stays unsent
# only when its publish fails, and setting it back to `pending_send` (`_failed`,
# `dispatch._not_sent`) is an UPDATE that commits synchronously. PostgreSQL flushes its
# WAL in order, so that commit puts the INSERT on disk too before the caller hears of the
# failure: a run the broker did not take is never left only in memory. A run the broker
# took is on disk within about 0.6 s (three wal_writer_delay); a database crash before
# then loses its record, not its message. A caller's own transaction is never changed.
#
# And a worker's first claim of a run (queued -> started, its first delivery), the
# first of a run's two writes there. Its outcome, and every progress report, commits
# with the flush, which puts the claim on disk too. A crash between the two loses only
# the claim: the run reads queued again, its execution's outcome is refused (it no
# longer holds the run), but its result row, the run's first (no execution of it stored
# one before), is written, and the sweeper's `reconcile` copies that outcome to the run
# before `resend_lost` looks at queued runs. A later claim (a retry, a redelivery),
# whose execution's result could be refused too, waits for its flush.


def _async_commit_on(connection) -> bool:
    return settings.RUN_RECORDS_ASYNC_COMMIT and connection.vendor == "postgresql"


def _may_skip_flush(run: Run, connection) -> bool:
    return (
        _async_commit_on(connection)
        and run.state == State.QUEUED
        and not connection.in_atomic_block
    )


def claims_without_flush(connection) -> bool:
    """Does a worker's claim of a run on `connection` skip its flush (see above)?"""
    return _async_commit_on(connection) and not connection.in_atomic_block


def commit_without_flush(using: str | None = None) -> None:
    """Called first in a transaction that writes runs `queued` and nothing else (a bulk
    start): with RUN_RECORDS_ASYNC_COMMIT, its commit does not wait for the WAL flush.
    Only in a transaction opened by the caller itself, never inside someone else's."""
    connection = transaction.get_connection(using)
    if _async_commit_on(connection) and len(connection.atomic_blocks) == 1:
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


# The publish guard ----------------------------------------------------------------------


def guard_publishing(app) -> None:
    """Guard every publish of `app` (see the module's docstring): its `amqp` now, and any
    `amqp` it makes later (tests drop it to change brokers), through `amqp_cls`."""
    if not issubclass(symbol_by_name(app.amqp_cls), GuardedAMQP):
        app.amqp_cls = GuardedAMQP
    amqp = app.__dict__.get("amqp")
    if amqp is not None and not isinstance(amqp, GuardedAMQP):
        amqp.send_task_message = guarded(amqp.send_task_message)  # over a cached_property


class GuardedAMQP(AMQP):
    def _create_task_sender(self):
        return guarded(super()._create_task_sender())


def guarded(send):
    """Celery's `send_task_message`, guarded."""

    def send_task_message(producer, name, message, **options):
        if "declare" not in options and _to_queue_by_name(producer, options):
            options["declare"] = []  # Redis routes by the queue's name: nothing to declare
        if _deferrable(message, options):
            return _defer(send, producer, name, message, options)
        written: list[str] = []
        token = _guarded.set(written)
        try:
            return send(producer, name, message, **options)
        except BaseException:
            if written:
                _failed(written)
            raise
        finally:
            _guarded.reset(token)

    return send_task_message


def _to_queue_by_name(producer, options: dict) -> bool:
    """On Redis, a message for a direct exchange's queue goes to the queue by its name
    (Celery's send_task_message makes it so): declaring the queue first, kombu's check
    on every publish, changes nothing, and beat skips it too."""
    connection = getattr(producer, "connection", None)
    if connection is None or connection.transport.driver_type != "redis":
        return False
    if options.get("exchange") or options.get("exchange_type") not in (None, "direct"):
        return False
    queue = options.get("queue")
    if isinstance(queue, str):
        return False  # a name: its queue's exchange is looked up later
    return getattr(getattr(queue, "exchange", None), "type", "direct") == "direct"


def written_queued(task_id: str) -> bool:
    """Called by the before_task_publish handler as it records a run: may it write the
    run `queued` (True: a guard sets it back if the publish fails)?"""
    written = _guarded.get()
    if written is None:
        return False
    written.append(task_id)
    return True


def is_guarded(task_id: str) -> bool:
    """Was this run written `queued` by the current guarded publish (nothing to mark)?"""
    written = _guarded.get()
    return written is not None and task_id in written


def _deferrable(message, options: dict) -> bool:
    """Inside a transaction, a run this publish records itself (so not a retry: a job
    that retries inside atomic() rolls its transaction back with the Retry it raises;
    not a run recorded already, by the dispatcher or by beat, which records and sends
    its runs in batches of its own; not a batch being published after commit)."""
    from .worker.recording import bulk_records, prerecorded

    headers = {**(message.headers or {}), **(options.get("headers") or {})}
    if _flushing.get() or headers.get("retries") or headers.get("periodic_task_name"):
        return False
    if bulk_records.get() is not None or prerecorded.get() == headers.get("id"):
        return False
    return transaction.get_connection().in_atomic_block


class _Capture:
    """Stands in for the producer while a deferred message is built: keeps what would be
    published, to publish it on commit."""

    def __init__(self, producer) -> None:
        self.connection = producer.connection
        self.published: list[tuple[object, dict]] = []

    def publish(self, body, **kwargs) -> None:
        self.published.append((body, kwargs))


def _defer(send, producer, name, message, options) -> None:
    capture = _Capture(producer)
    token = _guarded.set([])
    try:
        send(capture, name, message, **options)  # the publish signals fire: run written
    finally:
        _guarded.reset(token)
    for body, kwargs in capture.published:
        after_commit(message.headers["id"], functools.partial(_replay, body, kwargs))


def _replay(body, kwargs: dict, producer) -> None:
    producer.publish(body, **kwargs)


# Publishing together after commit -------------------------------------------------------


@dataclass(frozen=True)
class Outgoing:
    task_id: str
    publish: Callable[[object], None]  # given the producer
    carries: tuple[str, ...] = ()  # a pack's message: the runs in it (packs.py)

    @property
    def runs(self) -> tuple[str, ...]:
        return self.carries or (self.task_id,)


def after_commit(task_id: str, publish: Callable[[object], None], using=None,
                 carries: Iterable[str] = ()) -> None:  # fmt: skip
    """Publish when the current transaction commits, with the other messages of that
    transaction (at once when no transaction is open). `carries`: the runs of a pack's
    message (then `task_id` is the first of them)."""
    outgoing = Outgoing(task_id, publish, tuple(carries))
    connection = transaction.get_connection(using)
    if not connection.in_atomic_block:
        publish_together([outgoing])
        return
    connection.__dict__.setdefault("switchyard_outgoing", []).append(outgoing)
    # One callback per message: a savepoint rolled back drops its own callbacks only.
    transaction.on_commit(functools.partial(_flush, connection.alias), using=using)


def _flush(alias: str) -> None:
    outgoing = connections[alias].__dict__.pop("switchyard_outgoing", None)
    if not outgoing:
        return  # published by an earlier callback of the same commit
    recorded = _existing([task_id for item in outgoing for task_id in item.runs], alias)
    publish_together([item for item in outgoing if recorded.issuperset(item.runs)])


def _existing(task_ids: list[str], alias: str) -> set[str]:
    """Of these runs, those the commit kept (a rolled-back savepoint's runs are gone)."""
    found: set[str] = set()
    for start in range(0, len(task_ids), 5000):
        chunk = task_ids[start : start + 5000]
        runs = Run.objects.using(alias).filter(task_id__in=chunk)
        found.update(runs.values_list("task_id", flat=True))
    return found


# After a publish failed, runs started in this process within this many seconds wait as
# "pending_send" at once, for the sweeper, instead of each request waiting out the
# broker's connect and socket timeouts again (seconds each: issue 14, scenario 4).
BROKER_BACKOFF_SECONDS = 5.0
_broker_down_until = 0.0


def broker_recently_down() -> bool:
    return time.monotonic() < _broker_down_until


def note_broker(*, up: bool) -> None:
    global _broker_down_until
    _broker_down_until = 0.0 if up else time.monotonic() + BROKER_BACKOFF_SECONDS


def publish_together(outgoing: list[Outgoing]) -> int:
    """Publish on one producer, CHUNK messages per Redis pipeline (so that workers start
    on the first while the rest are built); if the broker fails, the runs of that chunk
    and of every later one go back to `pending_send` for the sweeper. Returns how many
    were published."""
    if not outgoing:
        return 0
    if broker_recently_down():
        log.warning("broker unreachable a moment ago; %d messages wait to be sent",
                    len(outgoing))  # fmt: skip
        _failed(task_id for item in outgoing for task_id in item.runs)
        return 0
    sent = 0
    token = _flushing.set(True)
    try:
        with current_app.producer_or_acquire() as producer:
            for start in range(0, len(outgoing), CHUNK):
                chunk = outgoing[start : start + CHUNK]
                with producer.batch(max_size=10 * len(chunk) + 10):  # no early flush
                    for item in chunk:
                        item.publish(producer)
                sent += len(chunk)
    except Exception:
        log.warning("could not publish %d messages; the sweeper sends their runs",
                    len(outgoing) - sent, exc_info=True)  # fmt: skip
        note_broker(up=False)
        _failed(task_id for item in outgoing[sent:] for task_id in item.runs)
    else:
        note_broker(up=True)
    finally:
        _flushing.reset(token)
    return sent


def _failed(task_ids: Iterable[str]) -> None:
    try:
        Run.objects.filter(task_id__in=list(task_ids)).publish_failed()
    except DatabaseError:
        log.exception("could not mark runs as not sent; the sweeper's resend_lost finds them")
