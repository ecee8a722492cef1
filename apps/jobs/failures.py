"""Failed for good: runs whose retries ran out (state failed) and that nobody handled,
grouped by their error, for /runs/failed/.

Grouping is on the exception type and its exact message (as Celery stored them in the
run's result), not a normalised message: a group is then exactly what its "retry all"
acts on (`run_filters.error_results` matches the same two JSON fragments). Errors whose
message carries an id make one group per id; filter by job to narrow them.
"""

import json
from dataclasses import dataclass, field

from django.db.models import Count, Max, OuterRef, QuerySet, Subquery
from django_celery_results.models import TaskResult

from .models import Run

MAX_ROWS = 2000  # (error, job) pairs read, newest first
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
    stored = TaskResult.objects.filter(task_id=OuterRef("task_id")).values("result")[:1]
    newest = runs.unhandled_failures().order_by("-queued_at", "-id").values("pk")[:NEWEST]
    rows = (
        Run.objects.filter(pk__in=Subquery(newest))
        .annotate(error=Subquery(stored))
        .values("error", "job_name")
        .annotate(count=Count("pk"), last_seen=Max("finished_at"))
        .order_by("-last_seen")[:MAX_ROWS]
    )
    groups: dict[tuple[str, str], FailureGroup] = {}
    for row in rows:
        key = error_of(row["error"])
        group = groups.setdefault(key, FailureGroup(*key))
        group.count += row["count"]
        group.jobs.add(row["job_name"])
        if row["last_seen"] and (group.last_seen is None or row["last_seen"] > group.last_seen):
            group.last_seen = row["last_seen"]
    return sorted(groups.values(), key=lambda g: (-g.count, g.error_type, g.message))


def error_of(stored: str | None) -> tuple[str, str]:
    """(exception type, message) from a stored result; ("", "") when none is stored
    or it is not Celery's JSON of an exception."""
    try:
        result = json.loads(stored or "")
    except ValueError:
        return "", ""
    if not isinstance(result, dict) or not isinstance(result.get("exc_type"), str):
        return "", ""
    message = result.get("exc_message")
    if isinstance(message, list) and len(message) == 1 and isinstance(message[0], str):
        return result["exc_type"], message[0]
    return result["exc_type"], json.dumps(message)
