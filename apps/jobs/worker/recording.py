"""Keep every Run record current from Celery's own signals.

`before_task_publish` fires in whichever process sends a task (web, CLI, beat, a shell
calling `.delay()`), before the message reaches the broker, so no dispatch path goes
unrecorded. Its run is written `queued` inside Celery's publish, which
apps/jobs/sending.py guards: if the publish fails the guard sets it back to
`pending_send`, and the sweeper sends it (apps/jobs/sweeper.py); a `.delay()` inside
`transaction.atomic()` is written in the transaction and published on commit. A publish
outside the guard writes `pending_send` and marks it queued in `after_task_publish`.
The worker-side signals move the run through its states through the run's own
transitions (`Run.objects.claim_start`, `finish`, ...: apps/jobs/models.py), each one
conditional UPDATE.
"""

import contextvars
import functools
import getpass
import logging
from datetime import datetime

from billiard.exceptions import WorkerLostError
from celery import current_app, signals
from django.db import DatabaseError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from .. import current_run, secrets, sending
from ..models import Run, Source, State

log = logging.getLogger(__name__)

# The task id whose Run row the dispatcher already wrote (web, API, CLI, admin).
prerecorded: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "prerecorded", default=None
)
# A sender that records in bulk (the beat scheduler) sets a list here: run records are
# collected into it instead of written one by one, and the sender marks them sent.
bulk_records: contextvars.ContextVar[list | None] = contextvars.ContextVar(
    "bulk_records", default=None
)

CELERY_STATES = {
    "SUCCESS": State.SUCCEEDED,
    "FAILURE": State.FAILED,
    "REVOKED": State.CANCELLED,
    "RETRY": State.RETRYING,
}


# Celery's tasks that call another task once per item (`chunks`, `map`, `starmap`): a
# message of one is recorded as one run when its inner task is recorded (its items in
# the parameters, so that the sweeper can send it again as it was).
ITEM_TASKS = ("celery.starmap", "celery.map")


def is_recorded(task_name: str) -> bool:
    """Celery's own tasks and housekeeping marked `switchyard_record = False` are not
    (but ITEM_TASKS are, if their inner task is: see record_dispatch)."""
    if task_name in ITEM_TASKS:
        return True
    if task_name.startswith("celery."):
        return False
    task = current_app.tasks.get(task_name)
    return getattr(task, "switchyard_record", True)


@signals.before_task_publish.connect
def record_dispatch(sender: str, body, headers: dict, routing_key=None, **kwargs) -> None:
    task_id = headers.get("id")
    if not is_recorded(sender) or not task_id or prerecorded.get() == task_id:
        return
    if headers.get("retries"):
        return  # a retry re-publishes the same run
    args, task_kwargs = (body[0], body[1]) if isinstance(body, list | tuple) else ([], {})
    if sender in ITEM_TASKS and not _inner_recorded(task_kwargs):
        return
    schedule = headers.get("periodic_task_name") or ""
    run = Run(
        task_id=task_id,
        job_name=sender,
        args=list(secrets.masked_args(sender, args)),
        parameters=secrets.masked(sender, task_kwargs),
        source=Source.SCHEDULE if schedule else Source.SHELL,
        requested_by_label=schedule or _os_user(),
        schedule_name=schedule,
        queue=routing_key or "",
        eta=_eta(headers.get("eta")),
        state=State.PENDING_SEND,
        queued_at=timezone.now(),
    )
    collected = bulk_records.get()
    if collected is not None:
        collected.append(run)
        return
    try:
        if sending.written_queued(task_id):
            run.state = State.QUEUED  # the publish guard sets it back if the publish fails
        sending.insert_run(run, ignore_conflicts=True)
    except DatabaseError:
        log.exception("could not record run %s of %s", task_id, sender)


def _eta(value) -> datetime | None:
    """The earliest start in a message's headers (`apply_async(eta=...)` or
    `countdown=...`: Celery writes it as ISO text); None when there is none or it cannot
    be read (naive: in Celery's timezone, as the worker reads it)."""
    try:
        eta = parse_datetime(value) if isinstance(value, str) else None
    except ValueError:
        return None
    if eta is not None and timezone.is_naive(eta):
        eta = timezone.make_aware(eta, current_app.timezone)
    return eta


def _inner_recorded(task_kwargs) -> bool:
    inner = task_kwargs.get("task") if isinstance(task_kwargs, dict) else None
    name = inner.get("task") if isinstance(inner, dict) else None
    return isinstance(name, str) and name not in ITEM_TASKS and is_recorded(name)


@signals.after_task_publish.connect
def record_sent(sender: str, headers: dict, **kwargs) -> None:
    """Marks queued a run written `pending_send` by an unguarded publish (none is, in a
    process where apps.jobs is ready: sending.guard_publishing)."""
    task_id = headers.get("id")
    if prerecorded.get() == task_id or sending.is_guarded(task_id):
        return  # the dispatcher's run, or written queued already
    if bulk_records.get() is not None or not is_recorded(sender) or headers.get("retries"):
        return
    try:
        Run.objects.filter(task_id=headers.get("id")).mark_queued()
    except DatabaseError:
        log.exception("could not mark run %s as sent", headers.get("id"))


@functools.cache  # a process's user does not change; looking it up costs 0.04 ms
def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@signals.task_prerun.connect
def record_start(task_id: str, task, **kwargs) -> None:
    if not is_recorded(task.name):
        return
    current = current_run.begin(task.request, task_id)
    takes_over = getattr(task.backend, "takes_over_run_updates", None)
    if takes_over is not None and takes_over(task):
        current.backend_writes = True  # claimed with the STARTED result (backend.py)
        return
    try:
        runs = Run.objects.filter(task_id=task_id)
        claimed = runs.claim_start(**claim_of(task.request), attempt=current.attempt)
    except DatabaseError:
        log.exception("could not mark run %s as started", task_id)
        return
    # Cancelled while queued (perhaps with no worker up to hear the revoke), or a
    # duplicate message of a run that already finished: the job body is skipped.
    current.skip = claimed == 0 and Run.objects.filter(task_id=task_id).exists()


@signals.task_postrun.connect
def record_finish(task_id: str, task, state: str | None = None, **kwargs) -> None:
    if not is_recorded(task.name) or state not in CELERY_STATES:
        return
    current = current_run.of(task.request)
    if current is not None and (current.skip or current.outcome_stored):
        return  # not claimed, or written with the result (apps/jobs/backend.py)
    attempt = current.attempt if current is not None else None
    if not _finish(task_id, CELERY_STATES[state], attempt=attempt) and attempt is not None:
        note_refused(task_id, attempt)


def claim_of(request) -> dict:
    """What a worker's request says about the start of its run (for claim_start)."""
    return {
        "worker": request.hostname or "",
        "retries": request.retries or 0,
        "redelivered": bool((request.delivery_info or {}).get("redelivered")),
    }


@signals.task_revoked.connect
def record_revoked(request, terminated=False, expired=False, **kwargs) -> None:
    if request is None or not is_recorded(request.task or ""):
        return
    note = "Expired before a worker ran it." if expired else ""
    _finish(request.id, State.CANCELLED, note=note)


@signals.worker_init.connect
def fail_runs_lost_with_this_worker(sender, **kwargs) -> None:
    """A worker starting under a name fails the runs its previous life left running.

    Messages of late-acked jobs come back from the broker and run again; those of jobs
    not safe to run twice were acknowledged on receipt and never come back, so their
    runs would stay "started" forever. No task has started in this life yet.
    """
    hostname = getattr(sender, "hostname", None)
    if not hostname:
        return
    try:
        lost = Run.objects.filter(worker=hostname, state__in=[State.STARTED, State.PROGRESS])
        for run in lost.only("pk", "task_id", "job_name"):
            task = current_app.tasks.get(run.job_name)
            if task is not None and not task.acks_late:
                _fail_lost(run, hostname)
    except DatabaseError:
        log.exception("could not look for runs lost with worker %s", hostname)


def _fail_lost(run: Run, hostname: str) -> None:
    note = f"Its worker ({hostname}) was lost while it ran; not run again (not idempotent)."
    if _finish(run.task_id, State.FAILED, note=note):
        current_app.backend.mark_as_failure(run.task_id, WorkerLostError(note))
        log.warning("run %s failed: %s", run.task_id, note)


@signals.task_unknown.connect
def fail_unknown_task(sender=None, name: str | None = None, id: str | None = None, **kwargs):
    """A worker that does not know the task discards its message (after logging
    "Received unregistered task"): its run would stay queued for ever. Fail it instead."""
    note = f"No worker knows task {name!r}: its message was discarded."
    if id and _finish(id, State.FAILED, note=note):
        log.error("run %s failed: %s", id, note)


@signals.task_rejected.connect
def log_refused_message(message, exc=None, **kwargs) -> None:
    """A message the worker refused (pickled, malformed) never runs; Celery's own log
    line shows its body but not which task it claimed to be: this one does."""
    headers = getattr(message, "headers", None) or {}
    log.error(
        "refused message %s for task %s (content type %s, origin %s): %s",
        headers.get("id"), headers.get("task"), getattr(message, "content_type", None),
        headers.get("origin"), exc,
    )  # fmt: skip


def note_refused(task_id: str, attempt: str) -> None:
    """Log an outcome not stored because this execution no longer holds its run (the
    sweeper took it back from a worker it found lost): a late write, fenced out."""
    if Run.objects.filter(task_id=task_id).exclude(attempt=attempt).exists():
        log.warning("run %s: outcome not stored, the run was taken back from this worker "
                    "(it stopped answering) and is no longer its to write", task_id)  # fmt: skip


def _finish(task_id: str, state: State, note: str | None = None, attempt=None) -> int:
    try:
        return Run.objects.filter(task_id=task_id).finish(state, note=note, attempt=attempt)
    except DatabaseError:
        log.exception("could not update run %s", task_id)
        return 0
