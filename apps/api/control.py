"""Queue and worker control in the JSON API: thin endpoints over apps/control/actions.py.

Imported by api.py before its catch-all routes. Errors keep the API's shape: 403 when
the caller may not control queues and workers (`control.control_queues`), or may not run
the job whose rate limit is read or set (`permissions.may_run`), 404 for an
unknown queue, worker or job, 422 for a bad value (naming the field), 409 when a worker
refuses (e.g. grow on a pool that cannot), 503 when the broker is unreachable.
"""

from typing import Literal

from ninja import Field, Path, Schema
from ninja.errors import HttpError
from pydantic import ConfigDict, field_validator

from apps.control import actions, status
from apps.control.models import Via
from apps.control.rules import (
    Actor,
    BrokerUnreachable,
    ControlDenied,
    ControlError,
    may_control,
    whole_number,
)

from .api import api, error_response, errors
from .schemas import NO_NUL

UNKNOWN_FIELDS = ("queue", "worker", "job")
Name = Path(..., max_length=200, pattern=NO_NUL)


@api.exception_handler(ControlDenied)
def on_denied(request, exc: ControlDenied):
    return error_response(request, 403, str(exc))


@api.exception_handler(BrokerUnreachable)
def on_broker_down(request, exc: BrokerUnreachable):
    return error_response(request, 503, str(exc))


@api.exception_handler(ControlError)
def on_control_error(request, exc: ControlError):
    if exc.field in UNKNOWN_FIELDS:
        return error_response(request, 404, str(exc))
    if not exc.field:
        return error_response(request, 409, str(exc))
    return error_response(request, 422, f"Invalid {exc.field}: {exc}", {exc.field: [str(exc)]})


def actor(request) -> Actor:
    return Actor(Via.API, request.auth)


def controller(request) -> Actor:
    """For reads that only controllers see (queues, worker details), as the control
    pages (views.actor: `may_control`)."""
    if not may_control(request.auth):
        raise HttpError(403, "You may not control queues and workers.")
    return actor(request)


class Strict(Schema):
    model_config = ConfigDict(extra="forbid")


class QueueOut(Schema):
    name: str
    waiting: int | None = Field(description="Messages waiting; null if the broker is down.")
    paused: bool
    consumers: int = Field(description="Workers consuming it now.")


class ActionOut(Schema):
    action: str
    target: str
    detail: dict
    note: str = Field("", description="Set when the workers running now were not told.")


class PurgeIn(Strict):
    confirm: Literal[True] = Field(description="Must be true: the messages are dropped.")


class PurgeOut(Schema):
    queue: str
    dropped: int = Field(description="Messages taken off the queue.")
    cancelled: int = Field(description="Their runs, now cancelled with a note.")


class Numbers(Strict):
    @field_validator("*", mode="before")
    @classmethod
    def digits_only(cls, value):
        """A number sent as a string goes through rules.whole_number (ASCII digits)."""
        if isinstance(value, str):
            try:
                return whole_number(value, "")
            except ControlError as exc:
                raise ValueError(str(exc)) from None
        return value


class PoolIn(Numbers):
    n: int = Field(1, ge=1, le=64, description="Processes to add or remove.")


class AutoscaleIn(Numbers):
    max: int = Field(..., ge=1, le=256)
    min: int = Field(..., ge=0, le=256)


class RateIn(Strict):
    rate: str | None = Field(
        ..., max_length=20, description="Per worker, e.g. `10/m`; null clears it.",
        examples=["10/m"],
    )  # fmt: skip


class RateOut(Schema):
    job: str
    queue: str
    rate: str | None = Field(description="Per worker; null: no limit.")
    stored: bool = Field(description="Set at run time (else from the job's code).")
    workers: int = Field(description="Workers consuming the job's queue now.")
    effective_total: str = Field(description="rate x workers: the site-wide limit now.")
    note: str


def action_out(row) -> dict:
    note = f"stored, but {actions.NOT_TOLD}" if getattr(row, "told_workers", None) is False else ""
    return {"action": row.action, "target": row.target, "detail": row.detail, "note": note}


# Queues ------------------------------------------------------------------------------------


@api.get("/queues", response={200: list[QueueOut], **errors(401, 403)}, tags=["control"])
def list_queues(request):
    """Every queue with its waiting messages, consumers and whether it is paused (for
    those who may control queues and workers)."""
    controller(request)
    return [q.__dict__ for q in status.queue_rows()]


@api.post(
    "/queues/{name}/pause",
    response={200: ActionOut, **errors(401, 403, 404, 413, 422)},
    tags=["control"],
)
def pause_queue(request, name: str = Name):
    """Workers stop taking messages from the queue (running jobs finish); stored, so
    workers that start later do not consume it either."""
    return action_out(actions.pause_queue(actor(request), name))


@api.post(
    "/queues/{name}/resume",
    response={200: ActionOut, **errors(401, 403, 404, 413, 422)},
    tags=["control"],
)
def resume_queue(request, name: str = Name):
    return action_out(actions.resume_queue(actor(request), name))


@api.post(
    "/queues/{name}/purge",
    response={200: PurgeOut, **errors(400, 401, 403, 404, 413, 422, 503)},
    tags=["control"],
)
def purge_queue(request, body: PurgeIn, name: str = Name):
    """Drop every waiting message (`GET /api/queues` says how many); their runs end
    cancelled with a note."""
    purged = actions.purge_queue(actor(request), name)
    return {"queue": name, "dropped": purged.dropped, "cancelled": purged.cancelled}


# Workers -----------------------------------------------------------------------------------


@api.get(
    "/workers/{name}", response={200: dict, **errors(401, 403, 404, 422, 503)}, tags=["control"]
)
def read_worker(request, name: str = Name):
    """The worker's pool (processes, autoscale bounds) and the queues it consumes."""
    controller(request)
    detail = status.worker_detail(name)
    if detail is None:
        raise HttpError(404, f"No worker {name!r} is answering.")
    return detail


@api.post(
    "/workers/{name}/grow",
    response={200: ActionOut, **errors(400, 401, 403, 404, 409, 413, 422, 503)},
    tags=["control"],
)
def grow_pool(request, body: PoolIn, name: str = Name):
    return action_out(actions.grow_pool(actor(request), name, body.n))


@api.post(
    "/workers/{name}/shrink",
    response={200: ActionOut, **errors(400, 401, 403, 404, 409, 413, 422, 503)},
    tags=["control"],
)
def shrink_pool(request, body: PoolIn, name: str = Name):
    return action_out(actions.shrink_pool(actor(request), name, body.n))


@api.post(
    "/workers/{name}/autoscale",
    response={200: ActionOut, **errors(400, 401, 403, 404, 409, 413, 422, 503)},
    tags=["control"],
)
def autoscale(request, body: AutoscaleIn, name: str = Name):
    return action_out(actions.autoscale(actor(request), name, body.max, body.min))


@api.post(
    "/workers/{name}/shutdown",
    response={200: ActionOut, **errors(401, 403, 404, 413, 422, 503)},
    tags=["control"],
)
def shutdown(request, name: str = Name):
    """Warm shutdown: no new messages; running jobs finish; then the worker exits."""
    return action_out(actions.shutdown_worker(actor(request), name))


# Rate limits -------------------------------------------------------------------------------


@api.get(
    "/jobs/{name}/rate-limit",
    response={200: RateOut, **errors(401, 403, 404, 422)},
    tags=["control"],
)
def read_rate_limit(request, name: str = Name):
    """The job's rate limit per worker, and the effective total for the workers alive
    (403 for a job you may not run, as its other endpoints)."""
    return rate_out(actions.runnable_job(actor(request), name))


@api.put(
    "/jobs/{name}/rate-limit",
    response={200: RateOut, **errors(400, 401, 403, 404, 413, 422)},
    tags=["control"],
)
def set_rate_limit(request, body: RateIn, name: str = Name):
    """Set (e.g. `{"rate": "10/m"}`) or clear (`{"rate": null}`) the job's rate limit:
    for those who may control queues and workers and may run the job. Celery applies it
    per worker; it is stored, so restarted workers apply it."""
    actions.set_rate_limit(actor(request), name, body.rate)
    return rate_out(actions.runnable_job(actor(request), name))


def rate_out(job) -> dict:
    summary = status.rate_summary(job)
    return {
        "job": job.name, "queue": summary.queue, "rate": summary.rate,
        "stored": summary.stored, "workers": summary.workers,
        "effective_total": summary.total, "note": status.PER_WORKER_NOTE,
    }  # fmt: skip
