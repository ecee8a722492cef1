"""Keep every Run record current from Celery's own signals.

`before_task_publish` fires in whichever process sends a task (web, CLI, beat, a shell
calling `.delay()`), before the message reaches the broker, so no dispatch path goes
unrecorded. A run starts as `pending_send` and becomes `queued` once the broker took
the message (`after_task_publish`): a run left `pending_send` was never sent, and the
sweeper sends it (apps/jobs/sweeper.py). The worker-side signals move the run through
its states with one conditional UPDATE each.
"""

import contextvars
import getpass
import logging

from celery import current_app, signals
from django.db import DatabaseError
from django.db.models import F
from django.utils import timezone

from .models import FINISHED_STATES, Run, Source, State

log = logging.getLogger(__name__)

# The task id whose Run row the dispatcher already wrote (web, API, CLI, admin).
prerecorded: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "prerecorded", default=None
)

CELERY_STATES = {
    "SUCCESS": State.SUCCEEDED,
    "FAILURE": State.FAILED,
    "REVOKED": State.CANCELLED,
    "RETRY": State.RETRYING,
}
# States from which a worker may (re)start a run: redelivery after a lost worker
# restarts a STARTED run; a finished or cancelled run is never started again.
STARTABLE_STATES = (State.PENDING_SEND, State.QUEUED, State.RETRYING, State.STARTED,
                    State.PROGRESS)  # fmt: skip


def is_recorded(task_name: str) -> bool:
    """Celery's own tasks and housekeeping marked `switchyard_record = False` are not."""
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
    schedule = headers.get("periodic_task_name") or ""
    run = Run(
        task_id=task_id,
        job_name=sender,
        args=list(args),
        parameters=task_kwargs,
        source=Source.SCHEDULE if schedule else Source.SHELL,
        requested_by_label=schedule or _os_user(),
        schedule_name=schedule,
        queue=routing_key or "",
        state=State.PENDING_SEND,
        queued_at=timezone.now(),
    )
    try:
        Run.objects.bulk_create([run], ignore_conflicts=True)
    except DatabaseError:
        log.exception("could not record run %s of %s", task_id, sender)


@signals.after_task_publish.connect
def record_sent(sender: str, headers: dict, **kwargs) -> None:
    if not is_recorded(sender) or headers.get("retries"):
        return
    try:
        Run.objects.filter(task_id=headers.get("id"), state=State.PENDING_SEND).update(
            state=State.QUEUED
        )
    except DatabaseError:
        log.exception("could not mark run %s as sent", headers.get("id"))


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@signals.task_prerun.connect
def record_start(task_id: str, task, **kwargs) -> None:
    if not is_recorded(task.name):
        return
    delivery = task.request.delivery_info or {}
    fields = {
        "state": State.STARTED,
        "started_at": timezone.now(),
        "worker": task.request.hostname or "",
        "retries": task.request.retries or 0,
        "deliveries": F("deliveries") + 1,
    }
    if delivery.get("redelivered"):
        fields["note"] = "Redelivered after its worker was lost."
    try:
        claimed = Run.objects.filter(task_id=task_id, state__in=STARTABLE_STATES).update(**fields)
    except DatabaseError:
        log.exception("could not mark run %s as started", task_id)
        return
    # Cancelled while queued (perhaps with no worker up to hear the revoke), or a
    # duplicate message of a run that already finished: the job body is skipped.
    task.request.switchyard_skip = claimed == 0 and Run.objects.filter(task_id=task_id).exists()


@signals.task_postrun.connect
def record_finish(task_id: str, task, state: str | None = None, **kwargs) -> None:
    if not is_recorded(task.name) or state not in CELERY_STATES:
        return
    if getattr(task.request, "switchyard_skip", False):
        return
    target = CELERY_STATES[state]
    if target in FINISHED_STATES:
        _update(task_id, state=target, finished_at=timezone.now())
    else:
        _update(task_id, state=target)


@signals.task_revoked.connect
def record_revoked(request, terminated=False, expired=False, **kwargs) -> None:
    if request is None or not is_recorded(request.task or ""):
        return
    note = "Expired before a worker ran it." if expired else ""
    _update(request.id, state=State.CANCELLED, finished_at=timezone.now(), note=note)


def _update(task_id: str, **fields) -> int:
    try:
        return (
            Run.objects.filter(task_id=task_id).exclude(state__in=FINISHED_STATES).update(**fields)
        )
    except DatabaseError:
        log.exception("could not update run %s", task_id)
        return 0
