"""Failed for good: runs whose retries ran out (state failed) and that nobody handled,
grouped by their error, for /runs/failed/.

Grouping is on the exception type and its exact message (as Celery stored them in the
run's result), not a normalised message: a group is then exactly what its "retry all"
acts on (`run_filters.error_results` matches the same two JSON fragments). Errors whose
message carries an id make one group per id; filter by job to narrow them.
"""

import datetime as dt
import json
from dataclasses import dataclass, field

from django.db import connection
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django_celery_results.models import TaskResult

from . import json_values

MAX_ROWS = 2000  # (error, job) pairs read, the most recently seen first
NEWEST = 10_000  # failures grouped: the newest ones (each group's count is of these)


@dataclass
class FailureGroup:
    error_type: str
    message: str
    count: int = 0
    last_seen: object = None
    jobs: set[str] = field(default_factory=set)

    @property
    def filters(self) -> dict[str, str]:
        """The /runs/ filters of this group (state failed, not handled, this error)."""
        return {"state": "failed", "handled": "no", "error_type": self.error_type,
                "error_message": self.message}  # fmt: skip


def failure_groups(runs: QuerySet) -> list[FailureGroup]:
    """`runs` (already visible to the reader and filtered) that failed for good and were
    not handled, grouped by error; the largest group first. Only the newest NEWEST
    failures are grouped, so the page costs the same at any size (the page says so)."""
    groups: dict[tuple[str, str], FailureGroup] = {}
    for error, job_name, count, last_seen in grouped_errors(runs):
        key = error_of(error)
        group = groups.setdefault(key, FailureGroup(*key))
        group.count += count
        group.jobs.add(job_name)
        last_seen = _aware(last_seen)
        if last_seen and (group.last_seen is None or last_seen > group.last_seen):
            group.last_seen = last_seen
    return sorted(groups.values(), key=lambda g: (-g.count, g.error_type, g.message))


def grouped_errors(runs: QuerySet) -> list[tuple]:
    """(stored result, job, count, last finished) of the newest NEWEST unhandled
    failures, grouped by the database: the newest come from the runs' own index, each
    one's result by its task id, and only the groups travel back. (Django cannot group
    over a sliced query; `pk IN (slice)` had PostgreSQL scan every run instead.)"""
    newest = runs.unhandled_failures().order_by("-queued_at", "-id")[:NEWEST]
    sql, params = newest.values("task_id", "job_name", "finished_at").query.sql_with_params()
    results = TaskResult._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT e.result, e.job_name, COUNT(*), MAX(e.finished_at) FROM ("  # noqa: S608
            f"SELECT (SELECT r.result FROM {results} r WHERE r.task_id = n.task_id) AS result,"
            f" n.job_name, n.finished_at FROM ({sql}) n) e GROUP BY e.result, e.job_name"
            " ORDER BY MAX(e.finished_at) DESC LIMIT %s",
            (*params, MAX_ROWS),
        )  # (a join instead: PostgreSQL hashed every stored result)
        return cursor.fetchall()


def _aware(moment):
    """A raw query's timestamp: aware on PostgreSQL, text or naive UTC on SQLite."""
    if isinstance(moment, str):
        moment = parse_datetime(moment)
    if moment is not None and timezone.is_naive(moment):
        moment = timezone.make_aware(moment, dt.UTC)
    return moment


def error_of(stored: str | None) -> tuple[str, str]:
    """(exception type, message) from a stored result; ("", "") when none is stored
    or it is not Celery's JSON of an exception; ("", its "not readable" marker) when it
    cannot be read (json_values.stored)."""
    if not stored:
        return "", ""
    result = json_values.stored(stored)
    if isinstance(result, json_values.UnreadableMarker):
        return "", str(result)
    if not isinstance(result, dict) or not isinstance(result.get("exc_type"), str):
        return "", ""
    message = result.get("exc_message")
    if isinstance(message, list) and len(message) == 1 and isinstance(message[0], str):
        return result["exc_type"], message[0]
    return result["exc_type"], json.dumps(message)
