"""Sending due runs: a batch's run records in one INSERT, its messages in one Redis
round trip (kombu's Producer.batch), then one UPDATE marks them queued. Every run gets
a deterministic task id (run_id), so a new leader never sends a due run twice."""

import logging
import time
import uuid
from datetime import UTC, datetime
from functools import cached_property

from django.db import transaction

from apps.jobs import publishing
from apps.jobs.models import Run
from apps.jobs.worker.recording import bulk_records, is_recorded

from .. import overlap
from .entries import CHUNK, DB_ERRORS, SwitchyardEntry
from .leadership import Superseded

log = logging.getLogger("apps.scheduling.schedulers")

RUN_ID_NAMESPACE = uuid.UUID("4f0c7f5e-6b7e-4d55-9d3a-5c2e1b7a9e10")


def run_id(name: str, last_run_at: datetime) -> str:
    """The task id of the run that follows `last_run_at`: the same in every beat."""
    return str(uuid.uuid5(RUN_ID_NAMESPACE, f"{name}\n{last_run_at.astimezone(UTC).isoformat()}"))


class Sending:
    @cached_property
    def _redis_broker(self) -> bool:
        return self.producer.connection.transport.driver_type == "redis"

    def _dispatch(self, batch: list[tuple[float, SwitchyardEntry]]) -> None:
        try:
            self._dispatch_batch(batch)
        except Superseded:
            self._stand_down()

    def _dispatch_batch(self, batch: list[tuple[float, SwitchyardEntry]]) -> None:
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
                self._check_fence()
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

        The records (pending_send) are written, in the transaction that checks the
        fence (leadership.py), before the buffered messages are flushed, and marked
        queued after: a crash in between leaves them for the jobs
        sweeper, as for any run whose sending failed.
        """
        if not items:
            return
        records: list[Run] = []
        token = bulk_records.set(records)
        try:
            # No early flush; the transaction commits (inner) before the batch flushes.
            with self.producer.batch(max_size=10 * len(items) + 10), transaction.atomic():
                self._fenced()
                for when, entry, task_id in items:
                    # Buffered: nothing to retry until the flush, which is not retried.
                    self._publish(entry, task_id, when, retry=False)
                Run.objects.bulk_create(records, ignore_conflicts=True)
            flushed = True
        except Superseded:
            raise  # nothing was sent: the batch is dropped unflushed
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
            Run.objects.filter(task_id__in=sent).mark_queued()
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
