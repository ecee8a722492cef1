"""What a running job calls: `report_progress(done, total, message)`."""

from celery import current_task
from django.db import DatabaseError

from . import current_run
from .models import Run, check_progress


class JobCancelled(Exception):
    """Raised inside a job whose run was cancelled; the job stops where it is."""


def report_progress(done: float, total: float, message: str = "") -> None:
    """Store progress through the result backend and on the run record.

    Raises JobCancelled when someone cancelled the run, so a job that reports progress
    can be cancelled on any worker pool; ValueError (nothing stored) unless done and
    total are finite numbers with 0 <= done <= total (`models.check_progress`).
    """
    check_progress(done, total)
    task = current_task
    # current_task is a proxy: `is None` is never true, its truth value is the task's.
    if not task or task.request.id is None or task.request.called_directly:
        return
    from .secrets import scrub, values  # (secrets imports the catalog, which imports this)

    request = task.request
    message = scrub(str(message), values(request.task, request.args, request.kwargs))
    meta = {"done": done, "total": total, "message": message[:500]}
    task.update_state(state="PROGRESS", meta=meta)
    current = current_run.of(task.request)
    attempt = current.attempt if current is not None else None
    try:
        runs = Run.objects.filter(task_id=task.request.id)
        updated = runs.report_progress(done, total, message, attempt=attempt)
    except DatabaseError:
        return
    if (
        updated == 0
        and Run.objects.filter(task_id=task.request.id, cancel_requested_at__isnull=False).exists()
    ):
        raise JobCancelled(task.request.id)
