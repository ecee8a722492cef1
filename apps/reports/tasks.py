"""Reports: exports started from the web, written by a worker, fetched by their owner."""

import datetime as dt
from typing import Annotated

from celery import current_task

from apps.jobs import dates, run_filters
from apps.jobs.catalog import job
from apps.jobs.models import Run, Source, State
from apps.jobs.params import Choices, MaxLength, Range, Validator

from . import export

# The /runs/ date filters' bounds (apps.jobs.dates): the export writes what /runs/ shows.
Day = Annotated[dt.date, Range(dates.EARLIEST.date(), dates.LATEST.date())]


@job(title="Export runs to CSV", group="Reports", cancellable=True)
def export_runs(
    job: Annotated[str, MaxLength(255)] = "",
    state: Annotated[str, Choices(lambda: State.values)] = "",
    source: Annotated[str, Choices(lambda: Source.values)] = "",
    user: Annotated[str, MaxLength(150)] = "",
    date_from: Day | None = None,
    date_to: Day | None = None,
    filters: Annotated[str, MaxLength(16000), Validator(run_filters.check_text)] = "",
) -> dict:
    """Write the runs matching the /runs/ filters to a CSV file for the one who asked.

    `filters` is /runs/'s query string (every filter of the page, parameter conditions
    too, e.g. `state=failed&param.customer_id=42`); the single fields before it still
    work, and both narrow the runs together.

    Only the user who started the export (and superusers) can download it, until
    EXPORT_EXPIRY_HOURS have passed. Progress is reported every 2,000 rows.
    """
    run = Run.objects.select_related("requested_by").get(task_id=current_task.request.id)
    filters = {"job": job, "state": state, "source": source, "user": user,
               "date_from": date_from, "date_to": date_to, "filters": filters}  # fmt: skip
    return export.export_runs(run, filters)


@job(title="Remove expired exports", group="Reports")
def remove_expired_exports() -> int:
    """Delete export files past EXPORT_EXPIRY_HOURS (each export also does this first)."""
    return export.remove_expired_exports()
