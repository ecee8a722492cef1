"""Request and response shapes; the OpenAPI document is generated from them."""

import json
from datetime import datetime, timedelta
from typing import Any

from celery import states
from django_celery_results.models import TaskResult
from ninja import Field, Schema
from pydantic import ConfigDict

from apps.jobs.catalog import Job
from apps.jobs.models import Run, Source, State

# Database ids are 64-bit; larger numbers are refused as input rather than overflowing.
MAX_ID = 2**63 - 1
# PostgreSQL text cannot hold NUL; refuse it in any string that reaches a query.
NO_NUL = r"^[^\x00]*$"


class Error(Schema):
    detail: str = Field(description="What went wrong, in one sentence.")
    errors: dict[str, list[str]] = Field(
        default_factory=dict, description="Messages per field or job parameter, if any."
    )


class JobOut(Schema):
    name: str = Field(description="The Celery task name, e.g. apps.demo.tasks.add.")
    title: str
    description: str
    group: str
    queue: str | None
    cancellable: bool
    idempotent: bool
    parameters: dict[str, Any] = Field(description="JSON schema of the job's parameters.")


class RunIn(Schema):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"parameters": {"x": 4, "y": 5}}]}
    )

    parameters: dict[str, Any] = Field(
        default_factory=dict, description="Values for the job's parameters (see its schema)."
    )
    idempotency_key: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="Repeat a request with the same key (same job, same caller) "
        "and get the first run back instead of a second one.",
    )


class Progress(Schema):
    done: float | None
    total: float | None
    percent: int | None
    message: str


class RunSummary(Schema):
    id: int
    task_id: str
    job: str
    state: State
    source: Source
    requested_by: str = Field(description="User name, schedule name or OS user.")
    schedule_name: str
    queue: str
    parameters: dict[str, Any]
    args: list[Any]
    queued_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    wait_seconds: float | None = Field(description="From queued to started.")
    run_seconds: float | None = Field(description="From started to finished.")
    worker: str
    retries: int
    deliveries: int
    progress: Progress
    cancel_requested_at: datetime | None
    rerun_of: int | None = Field(description="The run this one repeats.")
    note: str


class RunOut(RunSummary):
    result: Any = Field(
        None, description="The job's return value (or exception) once finished, as JSON data."
    )
    traceback: str | None = Field(None, description="Plain text, for failed runs.")


class RunFilters(Schema):
    job: str | None = Field(None, max_length=255, pattern=NO_NUL, description="Job name.")
    state: State | None = None
    source: Source | None = None
    before: int | None = Field(
        None, ge=1, le=MAX_ID, description="Cursor: only runs with a smaller id."
    )
    limit: int = Field(50, ge=1, le=200)


class RunPage(Schema):
    items: list[RunSummary]
    next_before: int | None = Field(description="Pass as ?before= for the next page.")
    next: str | None = Field(description="URL of the next page, or null on the last one.")


# From models to these shapes ------------------------------------------------------------


def job_out(job: Job) -> dict:
    return {
        "name": job.name,
        "title": job.title,
        "description": job.description,
        "group": job.group,
        "queue": job.queue,
        "cancellable": job.cancellable,
        "idempotent": job.idempotent,
        "parameters": job.json_schema(),
    }


def run_summary(run: Run) -> dict:
    return {
        "id": run.pk,
        "task_id": run.task_id,
        "job": run.job_name,
        "state": run.state,
        "source": run.source,
        "requested_by": run.who,
        "schedule_name": run.schedule_name,
        "queue": run.queue,
        # A row written by hand may hold another shape: shown empty (the run page shows it).
        "parameters": run.parameters if isinstance(run.parameters, dict) else {},
        "args": run.args if isinstance(run.args, list) else [],
        "queued_at": run.queued_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "wait_seconds": _seconds(run.wait_time),
        "run_seconds": _seconds(run.run_time),
        "worker": run.worker,
        "retries": run.retries,
        "deliveries": run.deliveries,
        "progress": {
            "done": run.progress_done,
            "total": run.progress_total,
            "percent": run.percent,
            "message": run.progress_message,
        },
        "cancel_requested_at": run.cancel_requested_at,
        "rerun_of": run.rerun_of_id,
        "note": run.note,
    }


def run_detail(run: Run) -> dict:
    """The summary plus Celery's stored result and traceback, as data (never HTML)."""
    stored = (
        TaskResult.objects.filter(task_id=run.task_id, status__in=states.READY_STATES)
        .only("result", "traceback", "content_type")
        .first()
    )
    return {
        **run_summary(run),
        "result": _decoded(stored) if stored else None,
        "traceback": stored.traceback if stored else None,
    }


def _decoded(stored: TaskResult) -> Any:
    if stored.result is None or stored.content_type != "application/json":
        return stored.result
    try:
        return json.loads(stored.result)
    except ValueError:
        return stored.result


def _seconds(duration: timedelta | None) -> float | None:
    return duration.total_seconds() if duration is not None else None
