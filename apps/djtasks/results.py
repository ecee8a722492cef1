"""A Tasks API `TaskResult` read from Switchyard's run record and stored result.

The run record (`apps.jobs.models.Run`) gives the status, the timestamps, the
arguments and the worker; the stored result (django-celery-results' row, same task
id) gives the return value, or the exception and traceback of a failure.
"""

import traceback

from django.utils import timezone
from django_celery_results.models import TaskResult as StoredResult

from apps.jobs import json_values
from apps.jobs.models import Run, State

from .compat import Task, TaskError, TaskResult, TaskResultStatus

STATUS = {
    State.PENDING_SEND: TaskResultStatus.READY,
    State.QUEUED: TaskResultStatus.READY,
    State.RETRYING: TaskResultStatus.READY,
    State.STARTED: TaskResultStatus.RUNNING,
    State.PROGRESS: TaskResultStatus.RUNNING,
    State.SUCCEEDED: TaskResultStatus.SUCCESSFUL,
    State.FAILED: TaskResultStatus.FAILED,
    State.CANCELLED: TaskResultStatus.FAILED,
    State.SKIPPED: TaskResultStatus.FAILED,
}


def from_run(run: Run, task: Task, alias: str) -> TaskResult:
    result = TaskResult(
        task=task,
        id=run.task_id,
        status=STATUS.get(run.state, TaskResultStatus.READY),
        enqueued_at=run.queued_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
        last_attempted_at=run.started_at,
        args=run.args,
        kwargs=run.parameters,
        backend=alias,
        errors=[],
        worker_ids=worker_ids(run),
    )
    if run.state in (State.SUCCEEDED, State.FAILED):
        _add_outcome(result)
    return result


def worker_ids(run: Run) -> list[str]:
    """One entry per delivery (the Tasks API counts attempts as len(worker_ids)); the
    run keeps the last worker's name only, so each entry is that name."""
    if not run.worker:
        return []
    return [run.worker] * max(run.deliveries, 1)


def _add_outcome(result: TaskResult) -> None:
    stored = (
        StoredResult.objects.filter(task_id=result.id)
        .values("status", "result", "traceback", "content_type")
        .first()
    )
    if stored is None:
        return
    value = _decode(stored)
    if result.status == TaskResultStatus.SUCCESSFUL:
        object.__setattr__(result, "_return_value", value)
    elif stored["status"] == "FAILURE":
        result.errors.append(
            TaskError(exception_class_path=_class_path(value), traceback=stored["traceback"] or "")
        )


def _decode(stored: dict):
    """The stored value (json_values.stored): a text it cannot read (not JSON, nested
    too deep) is its "(stored value not readable: ...)" marker, so `get_result` still
    answers (no error the Tasks API documents fits a result that exists)."""
    if stored["result"] is None or "json" not in (stored["content_type"] or ""):
        return None
    return json_values.stored(stored["result"])


def _class_path(exception: object) -> str:
    """Celery stores a failure as {"exc_type": ..., "exc_module": ...}."""
    if not isinstance(exception, dict) or not exception.get("exc_type"):
        return "builtins.Exception"
    return f"{exception.get('exc_module') or 'builtins'}.{exception['exc_type']}"


# In the worker, around the task function ---------------------------------------------


def running(request, task: Task) -> TaskResult:
    """The result a started task sees: the run as Celery just marked it started (or,
    for a run record gone missing, what the message itself tells)."""
    run = Run.objects.filter(task_id=request.id).first()
    if run is None:
        now = timezone.now()
        run = Run(task_id=request.id, state=State.STARTED, queued_at=now, started_at=now,
                  args=list(request.args or []), parameters=dict(request.kwargs or {}),
                  worker=request.hostname or "", deliveries=1)  # fmt: skip
    return from_run(run, task, task.backend)


def mark_failed(result: TaskResult, exc: BaseException) -> None:
    _finish(result, TaskResultStatus.FAILED)
    result.errors.append(
        TaskError(
            exception_class_path=f"{type(exc).__module__}.{type(exc).__qualname__}",
            traceback="".join(traceback.format_exception(exc)),
        )
    )


def mark_succeeded(result: TaskResult, value) -> None:
    _finish(result, TaskResultStatus.SUCCESSFUL)
    object.__setattr__(result, "_return_value", value)


def _finish(result: TaskResult, status: TaskResultStatus) -> None:
    object.__setattr__(result, "status", status)
    object.__setattr__(result, "finished_at", timezone.now())
