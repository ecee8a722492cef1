"""Saving run times: last_run_at and total_run_count of every schedule sent since the
last save, in one UPDATE (a join on VALUES). last_run_at in the database is the truth a
new leader starts from."""

import logging
from datetime import datetime

from django.db import connection
from django_celery_beat.models import PeriodicTask

from .entries import CHUNK, DB_ERRORS, SwitchyardEntry, _plain_interval

log = logging.getLogger("apps.scheduling.schedulers")


class RunTimes:
    def sync(self) -> None:
        try:
            self._save_run_times()
        except DB_ERRORS:
            log.exception("beat: could not save run times; trying again later")

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


def _next_run_time(entry: SwitchyardEntry, now: datetime) -> datetime:
    """The last_run_at to store after sending: the due time for intervals (no drift),
    unless that is more than a period late (then now: a late schedule runs once)."""
    if _plain_interval(entry):
        due = entry.last_run_at + entry.schedule.run_every
        if due + entry.schedule.run_every > now:
            return due
    return now
