"""Request and response shapes; the OpenAPI document is generated from them."""

from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any

from django.db.models import Exists, OuterRef
from ninja import Field, Schema
from pydantic import ConfigDict

from apps.jobs import converters, presenting
from apps.jobs.catalog import Job
from apps.jobs.models import NOT_STARTED, Run, Source, State

# Database ids are 64-bit; larger numbers are refused as input rather than overflowing.
MAX_ID = converters.MAX_ID
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


class RunsIn(Schema):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"items": [{"x": 1, "y": 2}, {"x": 3, "y": 4}]}]},
    )

    items: list[Any] = Field(
        description="One object of parameter values per run (see the job's schema). "
        "All are validated before any run is recorded: one bad item refuses them all."
    )
    per_message: Any = Field(
        1,
        description="Runs per Celery message, 1 to 100: more than 1 packs that many runs "
        "into each message, for many short runs of an idempotent job (docs/runs.md).",
    )


class StartedRun(Schema):
    id: int
    task_id: str
    state: State


class RunsStarted(Schema):
    count: int
    runs: list[StartedRun] = Field(description="In the order of the items.")


class RetryIn(Schema):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"secrets": {"token": "..."}}]}
    )

    secrets: dict[str, Any] = Field(
        default_factory=dict,
        description="The job's secret parameters, given again: a run stores them masked, "
        "so a run of a job with secrets is run again only with them (422 otherwise).",
    )


def _one_of(choices) -> str:
    return ", ".join(str(value) for value in choices.values)


# A stored row's state and source, as stored: the enums document them, but a row written
# by hand or by another version may hold other text, which one row shows rather than
# failing the whole list (the run page and the CLI show it as stored too).
StoredState = Annotated[
    str, Field(description=f"One of: {_one_of(State)}; a row written elsewhere: as stored.")
]
StoredSource = Annotated[
    str, Field(description=f"One of: {_one_of(Source)}; a row written elsewhere: as stored.")
]
# A stored number: a row written by hand may hold one that is not finite, shown by name.
StoredNumber = Annotated[
    float | str | None,
    Field(description='A number; "Infinity", "-Infinity" or "NaN" for one that is not finite.'),
]


class Progress(Schema):
    done: StoredNumber
    total: StoredNumber
    percent: int | None
    message: str


class RunSummary(Schema):
    id: int
    task_id: str
    job: str
    state: StoredState
    source: StoredSource
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
    handled_at: datetime | None = Field(
        None, description="A failure somebody dealt with (discarded or retried): when."
    )
    handled_by: str = Field("", description="And who.")
    pipeline: int | None = Field(
        None, description="For a pipeline's step: the pipeline's own run (its id)."
    )
    step: str = Field("", description="For a pipeline's step: its name in the pipeline.")


class StepOut(Schema):
    id: int | None = Field(description="Null for a hidden step.")
    step: str
    job: str = Field(description="Empty for a hidden step.")
    state: StoredState
    started_at: datetime | None
    finished_at: datetime | None
    hidden: bool = Field(False, description="A step run you may not see: its name and state only.")


class RunOut(RunSummary):
    result: Any = Field(
        None, description="The job's return value (or exception) once finished, as JSON data."
    )
    traceback: str | None = Field(None, description="Plain text, for failed runs.")
    steps: list[StepOut] = Field(
        default_factory=list,
        description="A pipeline's run: its steps in the order they were recorded (each is "
        "a run of its own: GET /api/runs/{id}). Empty for any other run.",
    )


class RunFilters(Schema):
    """The filters of /runs/ (apps.jobs.run_filters reads them, as for the page and the
    CLI). Parameter conditions are extra query keys: `param.<name>=<value>` (equals;
    `42` also matches the number 42) and `param.<name>~=<text>` (contains).

    Only documented here: the values are checked by run_filters, the one rule of every
    door (a 422 names a bad one), so they take what /runs/ and the CLI take."""

    job: str | None = Field(None, description="Job name (at most 255 characters).")
    state: list[str] | None = Field(
        None,
        description=f"One or more: repeat the key, or separate with commas ({_one_of(State)}).",
    )
    source: str | None = Field(None, description=f"One of: {_one_of(Source)}.")
    user: str | None = Field(None, description="Started by (user name).")
    worker: str | None = Field(None, description="Worker name.")
    schedule: str | None = Field(None, description="Schedule name.")
    date_from: str | None = Field(
        None, description="Queued from: YYYY-MM-DD or an ISO 8601 moment (2000 to 2099)."
    )
    date_to: str | None = Field(None, description="Queued until (a day: all of it), same forms.")
    handled: str | None = Field(None, description="Failure handled: yes or no.")
    before: int | None = Field(
        None, ge=1, le=MAX_ID, description="Cursor: only runs with a smaller id."
    )
    limit: int = Field(50, ge=1, le=200)


BULK_EXAMPLE = {"action": "retry", "query": "state=failed&param.customer_id=42", "expected": 12}


BULK_EXAMPLE = {"action": "retry", "query": "state=failed&param.customer_id=42", "expected": 12}


class BulkIn(Schema):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [BULK_EXAMPLE]})

    action: str = Field(pattern="^(retry|cancel|discard)$")
    query: str = Field(
        "", max_length=20000, description="The filters, as GET /api/runs/bulk/preview echoed them."
    )
    expected: int = Field(
        strict=True,
        ge=0,
        le=10**9,
        description="The count you confirmed: refused (409) if it grew.",
    )


class BulkPreview(Schema):
    action: str
    count: int = Field(description="Runs the action would touch now.")
    query: str = Field(description="The filters in canonical form: post them back.")


class FailureGroupOut(Schema):
    error_type: str = Field(description='e.g. "ValueError"; "" when no error was stored.')
    message: str = Field(description="The exact message (grouping is on type + message).")
    count: int
    last_seen: datetime | None
    jobs: list[str]
    query: str = Field(
        description="The group's filters: POST them to /api/runs/bulk to retry or discard "
        'it ("" for failures with no stored error).'
    )


class BulkOut(Schema):
    action: str
    matched: int
    done: int
    not_permitted: int = Field(description="Runs of jobs you may not run: skipped.")
    refused: int = Field(description="Retries refused: parameters no longer valid.")
    changed: int = Field(description="Finished, started or handled meanwhile.")
    run: int | None = Field(description="The job acting on a large set (202), if any.")
    errors: list[str]


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
    """A run in a list: the run record alone (`presenting.summary`), no query."""
    return {**summary_out(presenting.summary(run)), **place(run)}


def run_detail(run: Run, user) -> dict:
    """The summary plus Celery's stored result and traceback, as data (never HTML); a
    pipeline's steps as `user` may see them."""
    view = presenting.describe(run)
    return {**summary_out(view), **place(run), "result": view.result,
            "traceback": view.traceback, "steps": steps_out(run, user)}  # fmt: skip


def place(run: Run) -> dict:
    """Where a run stands in a pipeline (a step's pipeline and name; nothing otherwise)."""
    return {"pipeline": run.pipeline_id, "step": run.step}


def steps_out(run: Run, user) -> list[dict]:
    """A pipeline run's steps (recorded when it starts: none before, so no query). Each
    is a run of its own: one `user` may not see (Run.objects.visible_to) is hidden."""
    if run.state in NOT_STARTED or run.pipeline_id is not None:
        return []
    fields = ("id", "step", "job_name", "state", "started_at", "finished_at", "seen")
    seen = Exists(Run.objects.visible_to(user).filter(pk=OuterRef("pk")))
    rows = run.steps.order_by("pk").annotate(seen=seen).values(*fields)
    return [step_out(row) for row in rows]


def step_out(row: dict) -> dict:
    """One step of `steps_out`; one its reader may not see: its name and state only."""
    seen, job = row.pop("seen"), row.pop("job_name")
    if not seen:
        return {"id": None, "step": row["step"], "job": "", "state": row["state"],
                "started_at": None, "finished_at": None, "hidden": True}  # fmt: skip
    return {**row, "job": job, "hidden": False}


NO_PROGRESS = {"done": None, "total": None, "percent": None, "message": ""}


def summary_out(view: presenting.RunView) -> dict:
    return {
        "id": view.id,
        "task_id": view.task_id,
        "job": view.job_name,
        "state": view.state,
        "source": view.source,
        "requested_by": view.requested_by,
        "schedule_name": view.schedule_name,
        "queue": view.queue,
        "parameters": view.parameters,
        "args": view.args,
        "queued_at": view.queued_at,
        "started_at": view.started_at,
        "finished_at": view.finished_at,
        "wait_seconds": view.wait_seconds,
        "run_seconds": view.run_seconds,
        "worker": view.worker,
        "retries": view.retries,
        "deliveries": view.deliveries,
        "progress": asdict(view.progress) if view.progress else NO_PROGRESS,
        "cancel_requested_at": view.cancel_requested_at,
        "rerun_of": view.rerun_of,
        "note": view.note,
        "handled_at": view.handled_at,
        "handled_by": view.handled_by,
    }
