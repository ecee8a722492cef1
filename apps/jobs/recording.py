"""Keep every Run record current from Celery's own signals.

`before_task_publish` fires in whichever process sends a task (web, CLI, beat, a shell
calling `.delay()`), before the message reaches the broker, so no dispatch path goes
unrecorded. The worker-side signals move the run through its states with one
conditional UPDATE each.
"""

import contextvars
import getpass
import logging

from celery import signals
from django.db import DatabaseError
from django.db.models import F
from django.utils import timezone

from .models import FINISHED_STATES, Run, Source, State

log = logging.getLogger(__name__)

# Task ids whose Run row the dispatcher already wrote (web, API, CLI, admin).
prerecorded: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "prerecorded", default=None
)

CELERY_STATES = {
    "SUCCESS": State.SUCCEEDED,
    "FAILURE": State.FAILED,
    "REVOKED": State.CANCELLED,
    "RETRY": State.RETRYING,
    "IGNORED": State.SKIPPED,
}


def is_recorded(task_name: str) -> bool:
    return not task_name.startswith("celery.")


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
        queued_at=timezone.now(),
    )
    try:
        Run.objects.bulk_create([run], ignore_conflicts=True)
    except DatabaseError:
        log.exception("could not record run %s of %s", task_id, sender)


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
    if _update(task_id, **fields) == 0:
        # Cancelled while queued (perhaps with no worker up to hear the revoke).
        task.request.switchyard_cancelled = Run.objects.filter(
            task_id=task_id, state=State.CANCELLED
        ).exists()


@signals.task_postrun.connect
def record_finish(task_id: str, task, state: str | None = None, **kwargs) -> None:
    if not is_recorded(task.name) or state not in CELERY_STATES:
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
        return Run.objects.filter(task_id=task_id).exclude(state=State.CANCELLED).update(**fields)
    except DatabaseError:
        log.exception("could not update run %s", task_id)
        return 0
