"""What the dashboard shows, gathered with bounded queries (no scan grows with history).

Each function feeds one part of the page; the view and its htmx partials call them.
"""

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Count, QuerySet
from django.db.models.functions import TruncHour
from django.utils import timezone
from django_celery_results.models import TaskResult

from apps.jobs import inspect, json_values, liveness, revalidating, sweeper
from apps.jobs.models import HELD_STATES, Run, State
from apps.jobs.permissions import sees_all_runs

from . import heartbeat
from .models import Incident, Kind

CHART_KEY = "ops:chart-data"
CHART_CACHE_SECONDS = 30
CHART_KEEP_SECONDS = 600  # numbers older than this are not shown: worked out anew
DURATION_SAMPLE = 20_000  # newest finished runs used for the percentiles


@dataclass(frozen=True)
class WorkerRow:
    name: str
    online: bool
    concurrency: int | None
    active: int
    last_seen: datetime | None
    # Not answering while holding started runs, for WORKER_LOST_AFTER_SECONDS or more:
    # the sweeper takes its runs back (sends them again, or fails them).
    lost: bool = False
    held: tuple[Run, ...] = ()


def workers(snap: inspect.Snapshot, user=None) -> list[WorkerRow]:
    """Workers answering now, then the ones that answered in the last day but no longer,
    or hold started runs without answering, with the runs they hold (those `user` sees)."""
    seen = heartbeat.last_seen()
    busy = dict(
        Run.objects.filter(state__in=[State.STARTED, State.PROGRESS], worker__gt="")
        .values_list("worker")
        .annotate(n=Count("id"))
        .order_by()
    )
    rows = [WorkerRow(w.name, True, w.concurrency, busy.get(w.name, 0), seen.get(w.name))
            for w in snap.workers]  # fmt: skip
    if snap.broker_ok:
        silent = liveness.silent_holders(snap.worker_names)
        held = held_runs(set(silent), user)
        now = timezone.now()
        rows += [WorkerRow(n, False, None, busy.get(n, 0), seen.get(n),
                           lost=n in silent and liveness.is_lost(silent[n], now),
                           held=held.get(n, ()))
                 for n in sorted((set(seen) | set(silent)) - snap.worker_names)]  # fmt: skip
    return rows


def held_runs(names: set[str], user, limit: int = 20) -> dict[str, tuple[Run, ...]]:
    """The started runs each of these workers holds, newest first, `limit` in all."""
    if not names:
        return {}
    runs = Run.objects.filter(worker__in=names, state__in=HELD_STATES)
    if user is not None:
        runs = runs.visible_to(user)
    by_worker: dict[str, list[Run]] = {}
    for run in runs.order_by("-started_at")[:limit]:
        by_worker.setdefault(run.worker, []).append(run)
    return {name: tuple(runs) for name, runs in by_worker.items()}


def in_progress(user, snap: inspect.Snapshot | None = None, limit: int = 20) -> list[Run]:
    """Active runs; each started one whose worker is not answering is marked
    `worker_silent` (its progress is not live: the page says so instead)."""
    runs = Run.objects.visible_to(user).active().select_related("requested_by")
    found = list(runs.order_by("-queued_at")[:limit])
    answering = snap is not None and snap.broker_ok and liveness.answering_names(snap.worker_names)
    for run in found:
        run.worker_silent = (
            answering is not False and run.state in HELD_STATES and (run.worker not in answering)
        )
    return found


def stuck(user, snap: inspect.Snapshot, limit: int = 20) -> list[Run]:
    """Runs no worker picked up in time, or whose worker is gone (broker permitting).
    While lost workers are taken back by the sweeper, runs on a silent worker show with
    it in the workers' part instead."""
    alive = snap.worker_names if snap.broker_ok and liveness.lost_after() is None else None
    runs = sweeper.stuck_runs(alive).visible_to(user).select_related("requested_by")
    return list(runs.order_by("queued_at")[:limit])


def recent_failures(user, limit: int = 10) -> list[Run]:
    runs = Run.objects.visible_to(user).unhandled_failures()  # handled ones are dealt with
    failures = list(runs.select_related("requested_by").order_by("-queued_at")[:limit])
    errors = dict(
        TaskResult.objects.filter(task_id__in=[r.task_id for r in failures]).values_list(
            "task_id", "result"
        )
    )
    for run in failures:
        run.error = _error_text(errors.get(run.task_id))
    return failures


def _error_text(stored: str | None) -> str:
    if not stored:
        return ""
    result = json_values.stored(stored)
    if isinstance(result, json_values.UnreadableMarker):
        return str(result)
    if isinstance(result, dict) and "exc_type" in result:
        return f"{result['exc_type']}: {result.get('exc_message', '')}"[:300]
    return ""


def open_incidents(user) -> list[Incident]:
    """Open incidents about jobs this user may see (Run.objects.visible_to's rule), and
    those about no job (beat down)."""
    incidents = Incident.objects.open().visible_to(user)
    return list(incidents.order_by("-opened_at")[:50])


def missed_schedules(user) -> list[Incident]:
    """Schedules that missed a run, and broken ones (beat skips them until fixed)."""
    kinds = (Kind.MISSED_RUN, Kind.BROKEN_SCHEDULE)
    return [i for i in open_incidents(user) if i.kind in kinds]


@dataclass(frozen=True)
class BeatStatus:
    age: timedelta | None
    max_age: int

    @property
    def ok(self) -> bool:
        return self.age is not None and self.age.total_seconds() < self.max_age


def beat_status() -> BeatStatus:
    return BeatStatus(heartbeat.age("beat"), settings.BEAT_HEARTBEAT_MAX_AGE)


# Charts over the last 24 hours ---------------------------------------------------------


def runs_per_hour(
    runs: QuerySet[Run], now: datetime | None = None
) -> tuple[list[datetime], dict[str, list[int]]]:
    """Hour starts (oldest first) and, per state, the `runs` queued in each hour."""
    now = now or timezone.now()
    # TruncHour cuts in the current time zone, so the buckets start on its hours.
    first = timezone.localtime(now).replace(minute=0, second=0, microsecond=0)
    first -= timedelta(hours=23)
    hours = [first + timedelta(hours=i) for i in range(24)]
    rows = (
        runs.filter(queued_at__gte=first)
        .annotate(hour=TruncHour("queued_at"))
        .values_list("hour", "state")
        .annotate(n=Count("id"))
        .order_by()
    )
    index = {hour: i for i, hour in enumerate(hours)}
    counts: dict[str, list[int]] = {}
    for hour, state, n in rows:
        if hour in index:
            counts.setdefault(state, [0] * 24)[index[hour]] += n
    return hours, counts


def duration_percentiles(
    runs: QuerySet[Run], now: datetime | None = None
) -> list[tuple[str, float, float, int]]:
    """(job, p50 seconds, p95 seconds, runs) over the newest finished `runs` of 24 hours,
    slowest p95 first. Nearest-rank percentiles: in SQL on PostgreSQL, else in Python."""
    now = now or timezone.now()
    runs = (
        runs.filter(
            queued_at__gte=now - timedelta(hours=24),
            state__in=[State.SUCCEEDED, State.FAILED],
            started_at__isnull=False,
            finished_at__isnull=False,
        )
        .order_by("-queued_at")
        .values_list("job_name", "started_at", "finished_at")[:DURATION_SAMPLE]
    )
    rows = _percentiles_in_sql(runs) if connection.vendor == "postgresql" else _percentiles(runs)
    return sorted(rows, key=lambda row: -row[2])


def _percentiles(runs) -> list[tuple[str, float, float, int]]:
    by_job: dict[str, list[float]] = {}
    for job_name, started, finished in runs:
        by_job.setdefault(job_name, []).append((finished - started).total_seconds())
    return [(job, percentile(d, 50), percentile(d, 95), len(d)) for job, d in by_job.items()]


def _percentiles_in_sql(runs) -> list[tuple[str, float, float, int]]:
    """percentile_disc is nearest rank, as percentile() below; no rows leave the server."""
    sample, params = runs.query.sql_with_params()
    sql = (
        "SELECT col1, percentile_disc(0.5) WITHIN GROUP (ORDER BY d), "  # noqa: S608
        "percentile_disc(0.95) WITHIN GROUP (ORDER BY d), count(*) "
        "FROM (SELECT col1, EXTRACT(EPOCH FROM col3 - col2) AS d "
        f"FROM ({sample}) AS sample (col1, col2, col3)) AS durations GROUP BY col1"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [(job, float(p50), float(p95), n) for job, p50, p95, n in cursor.fetchall()]


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile; values need not be sorted."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(len(ordered) * p / 100)) - 1]


def chart_data(user) -> dict:
    """Both charts' numbers, over the runs this user may see (Run.objects.visible_to).

    Over every run they change slowly and cost the most (at 1,000,000 runs, about 60 ms
    of a page's time): for those who see every run they are kept, and past
    CHART_CACHE_SECONDS shown while a thread works them out again, so no page waits for
    them (apps/jobs/revalidating.py). The few who see only some jobs get theirs worked
    out for them: a day of their jobs' runs and their own, read by the job and user
    indexes."""
    if sees_all_runs(user):
        return revalidating.cached(CHART_KEY, _charts, fresh_for=CHART_CACHE_SECONDS,
                                   keep_for=CHART_KEEP_SECONDS)  # fmt: skip
    return _charts(Run.objects.visible_to(user))


def _charts(runs: QuerySet[Run] | None = None) -> dict:
    runs = Run.objects.all() if runs is None else runs
    hours, counts = runs_per_hour(runs)
    return {"hours": hours, "counts": counts, "durations": duration_percentiles(runs)}
