"""Beat's entries and their fingerprints: loading every enabled schedule, noticing edits
with a cheap fingerprint per row (one query), and rebuilding only the rows that changed.
A row beat cannot compute is skipped and logged once; every other row keeps running."""

import logging
import time
from datetime import datetime
from functools import cached_property

from celery import schedules
from celery.utils.saferepr import saferepr
from django.db import DatabaseError, InterfaceError
from django.db.models import CharField
from django.db.models.functions import Cast
from django_celery_beat.models import PeriodicTask, PeriodicTasks
from django_celery_beat.schedulers import ModelEntry

from .. import bounds, preview
from ..models import Overlap, ScheduleOptions

log = logging.getLogger("apps.scheduling.schedulers")

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


class Entries:
    """The scheduler's entries (name -> SwitchyardEntry), kept in step with the table."""

    @property
    def schedule(self) -> dict[str, SwitchyardEntry]:
        return self._entries

    def _load_all(self) -> None:
        self._last_change_seen = PeriodicTasks.last_change()
        self._fingerprints = self._read_fingerprints()
        self._entries, self._plans = {}, {}
        for model in self._models(list(self._fingerprints)):
            self._add(model)
        self._rebuild_heap()
        self._last_change_check = self._last_full_check = time.monotonic()
        log.info("beat: %d enabled schedules loaded", len(self._entries))

    def _read_fingerprints(self) -> dict[int, tuple]:
        return {row[0]: row for row in self._fingerprint_rows()}

    def _fingerprint_rows(self):
        rows = PeriodicTask.objects.filter(enabled=True).annotate(**ZONE_TEXT)
        return rows.values_list(*FINGERPRINT).iterator(chunk_size=2000)

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

    # Incremental refresh ---------------------------------------------------------------

    def _refresh(self) -> None:
        """Rebuild only the entries whose rows were added, changed or removed."""
        now = time.monotonic()
        if now - self._last_change_check < self.change_check_every:
            return
        self._last_change_check = now
        timestamp = PeriodicTasks.last_change()
        full_check_due = now - self._last_full_check >= self.full_check_every
        if timestamp == self._last_change_seen and not full_check_due:
            return
        self._last_change_seen, self._last_full_check = timestamp, now
        # Compared row by row, only the changed ones kept: a second copy of every
        # fingerprint (10,000 schedules: about 6 MiB) would stay in beat's memory after.
        changed: dict[int, tuple] = {}
        seen: set[int] = set()
        for row in self._fingerprint_rows():
            seen.add(row[0])
            if self._fingerprints.get(row[0]) != row:
                changed[row[0]] = row
        gone = [pk for pk in self._fingerprints if pk not in seen]
        for pk in gone:
            self._drop(self._fingerprints[pk][1])
            self.broken.pop(self._fingerprints[pk][1], None)
        known = {pk: self._drop(self._fingerprints[pk][1]) for pk in changed
                 if pk in self._fingerprints}  # fmt: skip
        for model in self._models(list(changed)):
            self._replace(model, known.get(model.pk))
        for pk in gone:  # only now: a failure above leaves the next check to do it all again
            del self._fingerprints[pk]
        self._fingerprints.update(changed)
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


def _plain_interval(entry: SwitchyardEntry) -> bool:
    schedule = entry.schedule
    return type(schedule) is schedules.schedule and not schedule.relative
