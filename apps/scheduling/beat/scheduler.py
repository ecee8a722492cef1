"""Switchyard's beat scheduler: django-celery-beat's tables and admin, made to keep up
with tens of thousands of schedules and safe to run in two or more beat processes.

Select it with CELERY_BEAT_SCHEDULER = "apps.scheduling.schedulers:SwitchyardScheduler".

Scale. The stock DatabaseScheduler asks the database "did anything change?" on a new
connection before every run it sends, compares all N entries per run sent, and saves
last_run_at in bursts of four queries per run. This one keeps a heap of next due times
and looks only at the entries that are due; checks PeriodicTasks.last_update at most
once a second on the connection it already has; on a change, compares a cheap
fingerprint of every row (one query) and rebuilds only the rows that differ. Runs that
fall due within `send_every` of each other go out as one batch: their run records in
one INSERT, their messages in one Redis pipeline (kombu's Producer.batch), then one
UPDATE marks the records queued and one saves the run times. Each message is built by
the schedule's send plan (publishing.py): Celery's own message functions, with what
apply_async would work out anew for every run worked out once per schedule.

High availability. Every beat ticks; only the holder of a lease in Redis (lease.py)
dispatches. The leader renews it every few seconds; when it dies, a standby takes the
lease within BEAT_LEASE_SECONDS plus one renewal period, reloads last_run_at from the
database, and carries on. Standbys keep their schedule current meanwhile.

Exactly once across a failover. Every run a schedule sends gets a deterministic task
id: uuid5 of the schedule's name and the last_run_at it follows. last_run_at in the
database is the source of truth, and is advanced only *after* the batch is published
(send, then record), while the run records (pending_send) are written *before* it. So
a new leader computes the same ids for the runs the dead leader may have been sending,
and looks them up in the run records: a run with a record is not sent again, only
marked done. If the leader died after writing the records but before flushing the
messages, the records stay "pending_send" and the jobs sweeper sends them, with the
same task ids (apps.jobs.sweeper). The one window left is between the flush and the
UPDATE that marks them queued (one database round trip), in which a dead leader leaves
runs both sent and pending, and the sweeper sends them again with the same task id (a
worker skips a run that already finished). Tasks that keep no run records (celery.*,
switchyard_record = False) cannot be looked up, so for them the order is reversed
(record, then send): a leader killed in between loses that one run rather than
sending it twice.

Missed runs: like Celery, a schedule that is late by more than its period runs once,
not once per missed period. Interval schedules keep their phase: last_run_at becomes
the due time, not the (slightly later) send time.
"""

import gc
import heapq
import itertools
import logging
import time
import uuid
from datetime import UTC, datetime, timedelta
from functools import cached_property

from celery import schedules
from celery.utils.saferepr import saferepr
from django.conf import settings
from django.db import DatabaseError, InterfaceError, connection
from django.db.models import CharField
from django.db.models.functions import Cast
from django_celery_beat.models import PeriodicTask, PeriodicTasks
from django_celery_beat.schedulers import DatabaseScheduler, ModelEntry

from apps.jobs.models import Run, State
from apps.jobs.recording import bulk_records, is_recorded
from apps.ops import heartbeat

from .. import bounds, overlap, preview, publishing
from ..lease import Lease, beat_lease
from ..models import Overlap, ScheduleOptions

log = logging.getLogger(__name__)

RUN_ID_NAMESPACE = uuid.UUID("4f0c7f5e-6b7e-4d55-9d3a-5c2e1b7a9e10")
DB_ERRORS = (DatabaseError, InterfaceError)
CHUNK = 500  # ids per IN (...) query; SQLite's variable limit is far above it

# Everything that makes up an entry except the run times beat itself writes.
FINGERPRINT = (
    "id", "name", "task", "args", "kwargs", "queue", "exchange", "routing_key",
    "headers", "priority", "expires", "expire_seconds", "one_off", "start_time",
    "date_changed", "interval__every", "interval__period", "crontab__minute",
    "crontab__hour", "crontab__day_of_week", "crontab__day_of_month",
    "crontab__month_of_year", "crontab_zone", "solar__event", "solar__latitude",
    "solar__longitude", "clocked__clocked_time", "options__overlap",
)  # fmt: skip
RELATED = ("interval", "crontab", "solar", "clocked", "options")
# The zone as stored text: a zone no one knows must not stop reading every other row.
ZONE_TEXT = {"crontab_zone": Cast("crontab__timezone", output_field=CharField())}


class SwitchyardEntry(ModelEntry):
    """A ModelEntry that knows its overlap policy."""

    def __init__(self, model, app=None):
        super().__init__(model, app=app)
        self.skip_overlap = _overlap_policy(model) == Overlap.SKIP
        # Celery's crontab misses DST rules (docs/scheduling.md): fire as the preview says.
        self.schedule = preview.by_rule(self.schedule)

    @cached_property
    def reprs(self) -> dict[str, str]:
        """The argsrepr/kwargsrepr Celery would compute for every message, once."""
        amqp = self.app.amqp
        return {
            "argsrepr": self._repr(self.args, amqp.argsrepr_maxsize),
            "kwargsrepr": self._repr(self.kwargs, amqp.kwargsrepr_maxsize),
        }

    def _repr(self, value, maxsize: int) -> str:
        text = repr(value)  # arguments loaded from JSON: plain repr is safe, and cheap
        if len(text) <= maxsize:
            return text
        return saferepr(value, maxsize, maxlevels=self.app.conf.task_repr_maxlevels)

    def due_at(self, now: datetime) -> datetime | None:
        """preview.due_at, the one rule, on this entry's run times (kept on the model)."""
        return preview.due_at(self.model, now)

    @property
    def plain(self) -> bool:
        """An interval with no start time, expiry or one-off rule: due exactly when the
        heap says so, without asking ModelEntry.is_due."""
        model = self.model
        return _plain_interval(self) and not (model.start_time or model.expires or model.one_off)


def _overlap_policy(model) -> str:
    try:
        return model.options.overlap
    except ScheduleOptions.DoesNotExist:
        return Overlap.ALLOW


def run_id(name: str, last_run_at: datetime) -> str:
    """The task id of the run that follows `last_run_at`: the same in every beat."""
    return str(uuid.uuid5(RUN_ID_NAMESPACE, f"{name}\n{last_run_at.astimezone(UTC).isoformat()}"))


class SwitchyardScheduler(DatabaseScheduler):
    Entry = SwitchyardEntry

    #: Most runs sent per tick, so the lease and the change check stay current.
    batch_size = 500
    #: Seconds between sending batches: runs that fall due within this much of each
    #: other go out together (one INSERT, one Redis round trip, one UPDATE).
    send_every = 0.25
    #: Seconds between "did the schedule change?" checks (one small query).
    change_check_every = 1.0
    #: Seconds between full fingerprint comparisons, for bulk updates that did not
    #: call PeriodicTasks.update_changed().
    full_check_every = 300.0
    heartbeat_every = 5.0

    def __init__(self, *args, lease: Lease | None = None, **kwargs):
        self._entries: dict[str, SwitchyardEntry] = {}
        self._fingerprints: dict[int, tuple] = {}
        self._due: list[tuple[float, int, str]] = []
        self._heap_seq: dict[str, int] = {}
        self._counter = itertools.count()
        self._unsaved: dict[int, SwitchyardEntry] = {}
        self._lease = lease
        self._leading = False
        self._last_renewal = self._last_change_check = self._last_full_check = 0.0
        self._last_heartbeat = self._last_send = 0.0
        self._backlog = False
        self._look_up_until = 0.0
        self._sent_events: bool | None = None
        self._plans: dict[str, publishing.SendPlan | None] = {}
        #: Schedules skipped because beat cannot compute them: name -> why (logged once).
        self.broken: dict[str, str] = {}
        super().__init__(*args, **kwargs)

    # Loading -------------------------------------------------------------------------

    @property
    def schedule(self) -> dict[str, SwitchyardEntry]:
        return self._entries

    def setup_schedule(self) -> None:
        # This process sends no task-sent events while the scheduler lives (settings.py).
        self._sent_events = self.app.conf.task_send_sent_event
        self.app.conf.task_send_sent_event = settings.BEAT_TASK_SENT_EVENTS and self._sent_events
        self._planner = publishing.Planner(self.app)
        super().setup_schedule()  # writes celery.backend_cleanup and beat_schedule rows
        self._load_all()
        # Tens of thousands of entries live as long as beat: out of the garbage
        # collector's sight, its full passes stop pausing beat for a third of a second.
        gc.freeze()

    def sync(self) -> None:
        try:
            self._save_run_times()
        except DB_ERRORS:
            log.exception("beat: could not save run times; trying again later")

    def close(self) -> None:
        try:
            super().close()
            self._finalize.cancel()  # synced: nothing left for the exit hook
        finally:
            gc.unfreeze()
            if self._sent_events is not None:
                self.app.conf.task_send_sent_event = self._sent_events
            if self._lease is not None and self._leading:
                self._lease.release()  # a standby takes over now, not after the TTL
                self._leading = False

    @cached_property
    def _redis_broker(self) -> bool:
        return self.producer.connection.transport.driver_type == "redis"

    @property
    def lease(self) -> Lease:
        if self._lease is None:
            self._lease = beat_lease()
        return self._lease

    def _load_all(self) -> None:
        self._last_timestamp = PeriodicTasks.last_change()
        self._fingerprints = self._read_fingerprints()
        self._entries, self._plans = {}, {}
        for model in self._models(list(self._fingerprints)):
            self._add(model)
        self._rebuild_heap()
        self._last_change_check = self._last_full_check = time.monotonic()
        log.info("beat: %d enabled schedules loaded", len(self._entries))

    def _read_fingerprints(self) -> dict[int, tuple]:
        rows = PeriodicTask.objects.filter(enabled=True).annotate(**ZONE_TEXT)
        return {row[0]: row for row in rows.values_list(*FINGERPRINT).iterator(chunk_size=2000)}

    def _models(self, pks: list[int]):
        """The rows, with their schedules; a row whose schedule cannot even be read
        (a time zone no one knows) comes without it, and _add finds it broken."""
        query = PeriodicTask.objects.filter(enabled=True)
        for start in range(0, len(pks), CHUNK):
            chunk = pks[start : start + CHUNK]
            try:
                yield from list(query.filter(pk__in=chunk).select_related(*RELATED))
            except DB_ERRORS:
                raise
            except Exception:  # one unreadable row: read this chunk row by row
                yield from self._models_one_by_one(query, chunk)

    def _models_one_by_one(self, query, pks: list[int]):
        for pk in pks:
            try:
                yield from list(query.filter(pk=pk).select_related(*RELATED))
            except DB_ERRORS:
                raise
            except Exception:
                yield from query.filter(pk=pk)  # the schedule is read (and fails) in _add

    def _add(self, model) -> SwitchyardEntry | None:
        try:
            problem = bounds.beat_problem(model)
            entry = None if problem else self.Entry(model, app=self.app)
        except DB_ERRORS:
            raise
        except Exception as error:
            problem = f"{type(error).__name__}: {error}"
        if problem:
            self._skip(model.name, problem)
            return None
        self.broken.pop(entry.name, None)
        self._entries[entry.name] = entry
        return entry

    def _skip(self, name: str, problem: str) -> None:
        """Leave out a schedule beat cannot compute; say so once (not every tick).

        The admin shows it as broken and the alert sweep raises an incident: both ask
        preview.schedule_problem, which applies the same bounds.
        """
        self._drop(name)
        if self.broken.get(name) != problem:
            log.error("beat: skipping schedule %r until it is fixed: %s", name, problem)
        self.broken[name] = problem

    def _schedule(self, entry: SwitchyardEntry) -> None:
        """Put the entry on the heap at its next due time, or skip it if that fails."""
        try:
            self._push(entry, self._next_due(entry))
        except DB_ERRORS:
            raise
        except Exception as error:
            self._skip(entry.name, f"{type(error).__name__}: {error}")

    # Incremental refresh ---------------------------------------------------------------

    def _refresh(self) -> None:
        """Rebuild only the entries whose rows were added, changed or removed."""
        now = time.monotonic()
        if now - self._last_change_check < self.change_check_every:
            return
        self._last_change_check = now
        timestamp = PeriodicTasks.last_change()
        full_check_due = now - self._last_full_check >= self.full_check_every
        if timestamp == self._last_timestamp and not full_check_due:
            return
        self._last_timestamp, self._last_full_check = timestamp, now
        fresh = self._read_fingerprints()
        changed = [pk for pk, row in fresh.items() if self._fingerprints.get(pk) != row]
        gone = [row for pk, row in self._fingerprints.items() if pk not in fresh]
        for row in gone:
            self._drop(row[1])
            self.broken.pop(row[1], None)
        known = {pk: self._drop(self._fingerprints[pk][1]) for pk in changed
                 if pk in self._fingerprints}  # fmt: skip
        for model in self._models(changed):
            self._replace(model, known.get(model.pk))
        self._fingerprints = fresh
        if changed or gone:
            log.info("beat: schedule changed: %d added or changed, %d removed",
                     len(changed), len(gone))  # fmt: skip

    def _drop(self, name: str) -> SwitchyardEntry | None:
        self._heap_seq.pop(name, None)  # its heap item is skipped from now on
        self._plans.pop(name, None)
        return self._entries.pop(name, None)

    def _replace(self, model, previous: SwitchyardEntry | None) -> None:
        stored = model.last_run_at
        entry = self._add(model)
        if entry is None:
            return
        # An admin form may save a stale copy of last_run_at; keep the newer one we
        # know. None in the row is a reset (disable, then enable): the row wins.
        if previous is not None and stored is not None and previous.last_run_at > stored:
            entry.last_run_at = entry.model.last_run_at = previous.last_run_at
        self._schedule(entry)

    # Leadership ------------------------------------------------------------------------

    def _lead(self) -> bool:
        now = time.monotonic()
        if now - self._last_renewal >= self.lease.renew_every or not self.lease.valid:
            self._last_renewal = now
            held = self.lease.hold()
            if held and not self._leading:
                self._take_over()
            elif self._leading and not held:
                log.warning("beat: lost the leader lease; standing by")
                self._unsaved.clear()  # the new leader owns the run times now
            self._leading = held
        return self._leading and self.lease.valid

    def _take_over(self) -> None:
        """Start from the run times in the database: the last leader's, not ours."""
        log.info("beat: leader now (%s)", self.lease.owner)
        self._look_up_until = time.time() + self.lease.ttl  # allows for clock skew
        rows = PeriodicTask.objects.filter(enabled=True).values_list(
            "name", "last_run_at", "total_run_count", "date_changed", "start_time"
        )
        for name, last_run_at, count, date_changed, start_time in rows.iterator(2000):
            entry = self._entries.get(name)
            if entry is not None:
                _set_run_time(entry, last_run_at, count, date_changed, start_time)
        self._rebuild_heap()

    # The tick ----------------------------------------------------------------------------

    def tick(self, *args, **kwargs) -> float:
        try:
            self._refresh()
            if not self._lead():
                return min(self.max_interval, self.lease.renew_every)
            batch = self._pop_due(time.time())
            if batch:
                self._last_send, self._backlog = time.monotonic(), len(batch) == self.batch_size
                self._dispatch(batch)
            self._save_run_times()
            self._beat_heartbeat()
        except DB_ERRORS:
            log.exception("beat: database error; trying again shortly")
            connection.close()
            return 1.0
        except Exception:  # the last net: whatever a row holds, beat keeps ticking
            log.exception("beat: unexpected error in a tick; trying again shortly")
            return 1.0
        return self._sleep_time()

    def _sleep_time(self) -> float:
        wait = min(self.max_interval, self.lease.renew_every)
        if self._due:
            until_due = self._due[0][0] - time.time()
            if not self._backlog:
                until_due = max(until_due, self._last_send + self.send_every - time.monotonic())
            wait = min(wait, max(0.0, until_due))
        return wait

    def _beat_heartbeat(self) -> None:
        now = time.monotonic()
        if now - self._last_heartbeat >= self.heartbeat_every:
            self._last_heartbeat = now
            heartbeat.record("beat", leader=self.lease.owner)

    # The heap of due times ---------------------------------------------------------------

    def _rebuild_heap(self) -> None:
        self._due, self._heap_seq = [], {}
        for entry in list(self._entries.values()):
            self._schedule(entry)

    def _push(self, entry: SwitchyardEntry, when: float) -> None:
        seq = next(self._counter)
        self._heap_seq[entry.name] = seq
        heapq.heappush(self._due, (when, seq, entry.name))

    def _pop_due(self, now: float) -> list[tuple[float, SwitchyardEntry]]:
        batch = []
        while self._due and self._due[0][0] <= now and len(batch) < self.batch_size:
            when, seq, name = heapq.heappop(self._due)
            if self._heap_seq.get(name) == seq:  # else: replaced or removed since
                batch.append((when, self._entries[name]))
        return batch

    def _next_due(self, entry: SwitchyardEntry) -> float:
        """Unix time the entry is next due: preview.due_at, the rule every page shows
        (inlined for plain intervals, which are most of them: the same arithmetic)."""
        if _plain_interval(entry):
            return (entry.last_run_at + entry.schedule.run_every).timestamp()
        due = entry.due_at(_now())
        if due is not None:
            return due.timestamp()
        # It never runs again: ModelEntry.is_due disables a spent one-off or expired row.
        is_due, next_check = self._check(entry)
        return time.time() + (0 if is_due else next_check)

    def _check(self, entry: SwitchyardEntry) -> tuple[bool, float]:
        if entry.plain and entry.last_run_at + entry.schedule.run_every <= _now():
            return True, entry.schedule.seconds
        return entry.is_due()  # may raise: callers skip the entry (_schedule, _dispatch)

    # Sending -----------------------------------------------------------------------------

    def _dispatch(self, batch: list[tuple[float, SwitchyardEntry]]) -> None:
        ids = {entry.name: run_id(entry.name, entry.last_run_at) for _, entry in batch}
        # Only runs due before the last leader's lease ran out can have been sent by it.
        suspect = [ids[entry.name] for when, entry in batch if when <= self._look_up_until]
        try:
            sent = self._already_sent(suspect)
        except DB_ERRORS:
            self._put_back(batch)
            raise
        now = datetime.now(UTC)
        to_send = []
        for when, entry in batch:
            try:
                is_due, next_check = self._check(entry)
            except DB_ERRORS:
                raise
            except Exception as error:  # one entry beat cannot compute: skip it alone
                self._skip(entry.name, f"{type(error).__name__}: {error}")
                continue
            task_id = ids[entry.name]
            if not is_due:
                self._push(entry, time.time() + next_check)
            elif task_id in sent or self._skipped(entry, task_id):
                self._advance(entry, now)  # sent by the last leader (which died), or skipped
            elif not is_recorded(entry.task):  # nothing to look up after a crash:
                self._advance(entry, now)  # record, then send
                self._save_run_times()
                self._publish(entry, task_id, when)
            else:
                to_send.append((when, entry, task_id))
        self._send(to_send, now)

    def _put_back(self, batch: list[tuple[float, SwitchyardEntry]]) -> None:
        """Not lost: back on the heap, due again in a second."""
        for _, entry in batch:
            self._push(entry, time.time() + 1)

    def _already_sent(self, task_ids: list[str]) -> set[str]:
        found = set()
        for start in range(0, len(task_ids), CHUNK):
            chunk = task_ids[start : start + CHUNK]
            found.update(Run.objects.filter(task_id__in=chunk).values_list("task_id", flat=True))
        return found

    def _skipped(self, entry: SwitchyardEntry, task_id: str) -> bool:
        """Skip policy: record the run as skipped while the previous one runs."""
        if not entry.skip_overlap:
            return False
        previous = overlap.running_run(entry.name, entry.task)
        if previous is None:
            overlap.hold(entry.name, task_id, 2 * overlap.hard_time_limit(entry.task))
            return False
        overlap.record_skipped(entry, task_id, previous)
        log.info("beat: skipped %s: previous run %s still running", entry.name, previous.pk)
        return True

    def _send(self, items: list[tuple[float, SwitchyardEntry, str]], now: datetime) -> None:
        """Publish a batch in one Redis round trip, its run records in one INSERT.

        The records (pending_send) are written before the buffered messages are
        flushed, and marked queued after: a crash in between leaves them for the jobs
        sweeper, as for any run whose sending failed.
        """
        if not items:
            return
        records: list[Run] = []
        token = bulk_records.set(records)
        try:
            with self.producer.batch(max_size=10 * len(items) + 10):  # no early flush
                for when, entry, task_id in items:
                    # Buffered: nothing to retry until the flush, which is not retried.
                    self._publish(entry, task_id, when, retry=False)
                Run.objects.bulk_create(records, ignore_conflicts=True)
            flushed = True
        except DB_ERRORS:
            self._put_back([(when, entry) for when, entry, _ in items])  # nothing was sent
            raise
        except Exception:
            log.exception("beat: could not send %d runs; the jobs sweeper sends them", len(items))
            flushed = False
        finally:
            bulk_records.reset(token)
        if flushed:
            sent = [record.task_id for record in records]
            Run.objects.filter(task_id__in=sent, state=State.PENDING_SEND).update(
                state=State.QUEUED
            )
        for _, entry, _ in items:
            self._advance(entry, now)
        log.info("beat: sent %d due runs", len(items))

    def _publish(self, entry: SwitchyardEntry, task_id: str, when: float, **extra) -> None:
        due = datetime.fromtimestamp(when, UTC).isoformat()
        headers = {**entry.options.get("headers", {}), "celery_beat_task": True,
                   "switchyard_due": due}  # fmt: skip
        if self._redis_broker:
            extra["declare"] = []  # Redis routes to the queue by name; nothing to declare
        log.debug("beat: sending due task %s (%s)", entry.name, entry.task)
        try:
            plan = self._plan(entry)
            if plan is not None:
                plan.send(self.producer, task_id, headers, **extra)
            else:
                self._apply_async(entry, task_id, headers, extra)
        except Exception:
            # As stock Celery: beat does not retry a run it could not send (a run
            # record, if written, waits as "pending_send" for the jobs sweeper).
            log.exception("beat: could not send %s", entry.name)

    def _plan(self, entry: SwitchyardEntry) -> publishing.SendPlan | None:
        """Made at an entry's first run, forgotten when its row changes (_drop)."""
        if entry.name not in self._plans:
            options = {**entry.options, **entry.reprs}
            self._plans[entry.name] = self._planner.plan(
                entry.task, entry.args, entry.kwargs, options
            )
        return self._plans[entry.name]

    def _apply_async(self, entry: SwitchyardEntry, task_id: str, headers: dict, extra) -> None:
        """Celery's full path, for runs a SendPlan does not cover."""
        options = {**entry.options, **entry.reprs, **extra, "headers": headers, "task_id": task_id}
        task = self.app.tasks.get(entry.task)
        if task is not None:
            task.apply_async(entry.args, entry.kwargs, producer=self.producer, **options)
        else:
            self.app.send_task(
                entry.task, entry.args, entry.kwargs, producer=self.producer, **options
            )

    def _advance(self, entry: SwitchyardEntry, now: datetime) -> None:
        try:
            last_run_at = _next_run_time(entry, now)
        except Exception as error:  # an interval past datetime's end
            self._skip(entry.name, f"{type(error).__name__}: {error}")
            return
        entry.last_run_at = entry.model.last_run_at = last_run_at
        entry.total_run_count = entry.model.total_run_count = entry.total_run_count + 1
        self._unsaved[entry.model.pk] = entry
        self._schedule(entry)

    def _save_run_times(self) -> None:
        """One UPDATE for every run time advanced since the last save.

        Plain SQL: Django's Case/When costs about a millisecond of CPU per row.
        """
        entries = list(self._unsaved.values())
        for start in range(0, len(entries), CHUNK):
            _update_run_times(entries[start : start + CHUNK])
        self._unsaved.clear()


def _update_run_times(entries: list[SwitchyardEntry]) -> None:
    """WITH v(id, at, count) AS (VALUES ...) UPDATE ... FROM v: one statement, a join.

    (PostgreSQL and SQLite 3.33+; a CASE per row would be quadratic.)
    """
    if not entries:
        return
    adapt = connection.ops.adapt_datetimefield_value
    table = connection.ops.quote_name(PeriodicTask._meta.db_table)
    rows = ", ".join(["(%s, %s, %s)"] * len(entries))
    sql = (f"WITH v(id, at, count) AS (VALUES {rows}) "  # noqa: S608
           f"UPDATE {table} SET last_run_at = v.at, total_run_count = v.count "
           f"FROM v WHERE {table}.id = v.id")  # fmt: skip
    params = [p for e in entries for p in (e.model.pk, adapt(e.last_run_at), e.total_run_count)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _now() -> datetime:
    return datetime.now(UTC)


def _plain_interval(entry: SwitchyardEntry) -> bool:
    schedule = entry.schedule
    return type(schedule) is schedules.schedule and not schedule.relative


def _next_run_time(entry: SwitchyardEntry, now: datetime) -> datetime:
    """The last_run_at to store after sending: the due time for intervals (no drift),
    unless that is more than a period late (then now: a late schedule runs once)."""
    if _plain_interval(entry):
        due = entry.last_run_at + entry.schedule.run_every
        if due + entry.schedule.run_every > now:
            return due
    return now


def _set_run_time(entry, last_run_at, count, date_changed, start_time) -> None:
    """As ModelEntry.__init__ does: no last run yet means "since it was last saved"."""
    if last_run_at is None:
        last_run_at = date_changed
        if start_time:
            last_run_at -= timedelta(days=365 * 30)
    entry.model.last_run_at = entry.last_run_at = last_run_at
    entry.model.total_run_count = entry.total_run_count = count
