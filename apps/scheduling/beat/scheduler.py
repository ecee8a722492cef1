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

The package, by seam: entries.py (SwitchyardEntry, loading, fingerprints, refresh),
leadership.py (the lease, taking over), sending.py (run ids, batches, publishing),
run_times.py (advancing and saving last_run_at); this module has the tick, the heap
of due times, start and stop. When an entry is due is preview.due_at, the rule every
page and the alert sweep use (SwitchyardEntry.due_at).

Private parts of Celery and django-celery-beat still used, for want of a public path:
- `self._finalize.cancel()` in close(): DatabaseScheduler registers
  `Finalize(self, self.sync)` when it is built and offers no public way to drop it;
  close() has synced already, so cancelling saves a second database write at exit.
- `crontab._orig_*` (preview.DstSafeCrontab.of, _wall_clock_crontab): crontab keeps the
  field strings it was given only there; rebuilding it in another frame needs them.
- `crontab._expand_cronspec` (saving._celery_cron_field): Celery's own field parser, so
  that the form refuses what beat could not read.
- publishing.py repeats what Task.apply_async does once per schedule instead of once
  per run: `task._get_exec_options()`, `task._dump_pydantic_arguments` and
  `connection._reraise_as_library_errors()` are the steps apply_async takes, with no
  public equivalent; tests/scheduling/test_publishing.py checks the messages stay
  identical to apply_async's, so a Celery upgrade that changes them fails there.
Everything else goes through public API: Scheduler.tick/sync/close/setup_schedule,
ModelEntry, Producer.batch, Task.apply_async, `amqp.create_task_message` and
`send_task_message`.
"""

import gc
import heapq
import itertools
import logging
import time
from datetime import UTC, datetime

from django.conf import settings
from django.db import connection
from django_celery_beat.schedulers import DatabaseScheduler

from apps.jobs import publishing
from apps.scheduling.signals import beat_alive

from ..lease import Lease
from .entries import DB_ERRORS, Entries, SwitchyardEntry, _plain_interval
from .leadership import Leadership
from .run_times import RunTimes
from .sending import Sending

log = logging.getLogger("apps.scheduling.schedulers")


class SwitchyardScheduler(Entries, Leadership, Sending, RunTimes, DatabaseScheduler):
    """The tick, the heap of due times, start and stop; the rest is in the mixins:
    entries.py, leadership.py, sending.py, run_times.py."""

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

    # Start and stop --------------------------------------------------------------------

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

    def _schedule(self, entry: SwitchyardEntry) -> None:
        """Put the entry on the heap at its next due time, or skip it if that fails."""
        try:
            self._push(entry, self._next_due(entry))
        except DB_ERRORS:
            raise
        except Exception as error:
            self._skip(entry.name, f"{type(error).__name__}: {error}")

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
            beat_alive.send(sender=type(self), leader=self.lease.owner)

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


def _now() -> datetime:
    return datetime.now(UTC)
