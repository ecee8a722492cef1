"""Helpers of the export tests: runs in bulk, and reading an export back."""

import csv
import datetime as dt
import io
import uuid

from django.utils import timezone

from apps.jobs.models import Run, Source, State

EXPORT_JOB = "apps.reports.tasks.export_runs"


def make_runs(count: int, *, batch_size: int = 5000, **kw) -> None:
    """`count` runs, one second apart (newest now), inserted in batches."""
    now = kw.pop("queued_at", None) or timezone.now()
    kw.setdefault("job_name", "apps.demo.tasks.add")
    kw.setdefault("source", Source.SCHEDULE)
    kw.setdefault("state", State.SUCCEEDED)
    parameters = kw.pop("parameters", {})
    for start in range(0, count, batch_size):
        Run.objects.bulk_create(
            Run(task_id=str(uuid.uuid4()), queued_at=now - dt.timedelta(seconds=n),
                parameters={"n": n, **parameters}, **kw)
            for n in range(start, min(start + batch_size, count))
        )  # fmt: skip


def read_csv(content: bytes | str) -> list[list[str]]:
    text = content.decode() if isinstance(content, bytes) else content
    return list(csv.reader(io.StringIO(text)))
