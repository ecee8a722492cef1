"""Export runs to CSV: the /runs/ filters, streamed in batches to a file under MEDIA_ROOT.

Memory stays flat however many runs match: rows are read in keyset batches (no open
cursor, so the progress writes between batches are safe on SQLite too) and written
straight to the file.
"""

import csv
import datetime as dt
import json
import os
from collections.abc import Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qsl

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from apps.jobs import run_filters
from apps.jobs.json_values import printable
from apps.jobs.models import Run
from apps.jobs.progress import report_progress

from .models import EXPORT_FOLDER, Export

EXPORT_JOB = "apps.reports.tasks.export_runs"
BATCH_SIZE = 2000
# The export job's own filter fields, before it took /runs/'s whole query (`filters`).
FIELDS_BEFORE_QUERY = ("job", "state", "source", "user", "date_from", "date_to")
COLUMNS = (
    ("id", "id"),
    ("task_id", "task_id"),
    ("job", "job_name"),
    ("state", "state"),
    ("source", "source"),
    ("requested_by", "requested_by__username"),
    ("requested_by_label", "requested_by_label"),
    ("schedule", "schedule_name"),
    ("queue", "queue"),
    ("queued_at", "queued_at"),
    ("started_at", "started_at"),
    ("finished_at", "finished_at"),
    ("worker", "worker"),
    ("retries", "retries"),
    ("parameters", "parameters"),
)
HEADER = [name for name, _ in COLUMNS]
FIELDS = [field for _, field in COLUMNS]
_ID, _QUEUED_AT = FIELDS.index("id"), FIELDS.index("queued_at")


def export_runs(run: Run, filters: Mapping[str, object], now=None) -> dict:
    """Write the runs matching `filters` (as the export's owner sees them) to a CSV file."""
    now = now or timezone.now()
    remove_expired_exports(now)
    owner = run.requested_by
    runs = filtered_runs(filters, owner)
    relative = f"{EXPORT_FOLDER}/{run.task_id}.csv"
    path = Export(file_name=relative).path  # a task id sent with a "/" writes nowhere
    if path is None:
        raise ValueError(f"this run's task id cannot name a file: {run.task_id!r}")
    rows = write_csv(path, runs)
    expires_at = now + timedelta(hours=settings.EXPORT_EXPIRY_HOURS)
    Export.objects.update_or_create(
        run=run,
        defaults={"owner": owner, "file_name": relative, "rows": rows,
                  "expires_at": expires_at, "removed_at": None},
    )  # fmt: skip
    return {"file": relative, "rows": rows, "expires_at": expires_at.isoformat()}


def filtered_runs(filters: Mapping[str, object], owner) -> QuerySet:
    """The same filters and visibility as /runs/ (everything when no one asked): the
    `filters` query string /runs/ had, and the older single fields (job, state, ...)."""
    pairs = [(name, _text(filters.get(name))) for name in FIELDS_BEFORE_QUERY]
    pairs += parse_qsl(str(filters.get("filters") or ""))
    try:
        found = run_filters.read((name, value) for name, value in pairs if value)
    except run_filters.FilterError as error:
        raise ValueError(f"invalid filters: {error.one_line()}") from None
    runs = Run.objects.visible_to(owner) if owner is not None else Run.objects.all()
    return found.apply(runs)


def _text(value: object) -> str:
    return value.isoformat() if isinstance(value, dt.date) else str(value or "")


def write_csv(path: Path, runs: QuerySet, batch_size: int = BATCH_SIZE) -> int:
    """Stream the runs to `path` (written aside, then renamed); return the row count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    total, done = runs.count(), 0
    report_progress(0, total, f"0 of {total} runs")
    try:
        with partial.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(HEADER)
            for batch in batches(runs, batch_size):
                writer.writerows(csv_row(row) for row in batch)
                done += len(batch)
                report_progress(done, max(total, done), f"{done} of {total} runs")
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return done


def batches(runs: QuerySet, batch_size: int) -> Iterator[list[tuple]]:
    """Rows newest first, `batch_size` at a time, each batch its own indexed query."""
    ordered = runs.order_by("-queued_at", "-id").values_list(*FIELDS)
    page = ordered
    while batch := list(page[:batch_size]):
        yield batch
        at, pk = batch[-1][_QUEUED_AT], batch[-1][_ID]
        page = ordered.filter(queued_at__lte=at).filter(Q(queued_at__lt=at) | Q(pk__lt=pk))


def csv_row(row: tuple) -> list:
    return [_cell(value) for value in row]


def _cell(value) -> object:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat()
    value = printable(value)  # a lone surrogate stored before the rule: not UTF-8
    if isinstance(value, dict | list):
        value = json.dumps(value, sort_keys=True, ensure_ascii=False)
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value  # not a formula when opened in a spreadsheet
    return value


def remove_expired_exports(now=None) -> int:
    """Delete the files of expired exports (the rows stay, so downloads say "expired").

    Files whose row went with its run (pruned) are removed by age.
    """
    now = now or timezone.now()
    _remove_old_files(now - timedelta(hours=settings.EXPORT_EXPIRY_HOURS))
    expired = Export.objects.filter(expires_at__lte=now, removed_at__isnull=True)
    removed = 0
    for export in expired.only("pk", "file_name").iterator(chunk_size=500):
        path = export.path
        if path is None:
            continue  # a name outside the exports folder (logged): delete nothing
        path.unlink(missing_ok=True)
        removed += Export.objects.filter(pk=export.pk, removed_at__isnull=True).update(
            removed_at=now
        )
    return removed


def _remove_old_files(cutoff: dt.datetime) -> None:
    folder = Path(settings.MEDIA_ROOT) / EXPORT_FOLDER
    if not folder.is_dir():
        return
    for path in folder.glob("*.csv"):
        modified = dt.datetime.fromtimestamp(path.stat().st_mtime, tz=dt.UTC)
        if modified < cutoff:
            path.unlink(missing_ok=True)
