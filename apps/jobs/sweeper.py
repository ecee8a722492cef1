"""Find runs that fell between the cracks, and put them right.

- `send_pending`: runs recorded but never sent (the broker was down) are sent once.
- `reconcile`: runs whose worker died before it could update the run record take
  the final state Celery stored in django-celery-results.
- `stuck_runs` / `resend`: queued too long with no worker, or started on a worker that
  is gone; shown on the dashboard and the run page, and re-sent from there.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone
from django_celery_results.models import TaskResult

from .dispatch import send
from .models import Run, State
from .recording import CELERY_STATES

log = logging.getLogger(__name__)
BATCH = 500


def send_pending(older_than: timedelta | None = None) -> int:
    """Send runs left `pending_send`, oldest first; stop at the first broker failure."""
    if older_than is None:
        older_than = timedelta(seconds=settings.SWEEP_PENDING_AFTER_SECONDS)
    cutoff = timezone.now() - older_than
    pending = Run.objects.filter(state=State.PENDING_SEND, queued_at__lte=cutoff)
    sent = 0
    for run in pending.order_by("queued_at")[:BATCH]:
        if not _claim(run):
            continue  # another sweeper took it
        if not send(run, {"queue": run.queue} if run.queue else None):
            break
        sent += 1
    return sent


def _claim(run: Run) -> bool:
    return (
        Run.objects.filter(
            pk=run.pk, state=State.PENDING_SEND, send_attempts=run.send_attempts
        ).update(send_attempts=F("send_attempts") + 1)
        == 1
    )


def reconcile() -> int:
    """Copy final states from django-celery-results onto runs still marked active."""
    final = [status for status, state in CELERY_STATES.items() if state != State.RETRYING]
    results = TaskResult.objects.filter(
        status__in=final,
        task_id__in=Run.objects.filter(
            state__in=[State.QUEUED, State.STARTED, State.PROGRESS, State.PENDING_SEND]
        ).values("task_id"),
    ).values_list("task_id", "status", "date_done")[:BATCH]
    fixed = 0
    for task_id, status, date_done in results:
        fixed += (
            Run.objects.filter(task_id=task_id)
            .exclude(state__in=[State.SUCCEEDED, State.FAILED, State.CANCELLED])
            .update(state=CELERY_STATES[status], finished_at=date_done)
        )
    return fixed


def stuck_runs(alive_workers: set[str] | None = None):
    """Queued past the threshold, or started on a worker not in `alive_workers`."""
    cutoff = timezone.now() - timedelta(seconds=settings.STUCK_QUEUED_AFTER_SECONDS)
    stuck = Q(state=State.QUEUED, queued_at__lte=cutoff)
    if alive_workers is not None:
        stuck |= Q(state__in=[State.STARTED, State.PROGRESS]) & ~Q(worker__in=alive_workers)
    return Run.objects.filter(stuck)


def resend(run: Run) -> bool:
    """Send a stuck run's message again, same task id: a worker runs it at most once."""
    reset = Run.objects.filter(
        pk=run.pk, state__in=[State.QUEUED, State.STARTED, State.PROGRESS, State.PENDING_SEND]
    ).update(state=State.PENDING_SEND, note="Re-sent by hand after it got stuck.")
    if not reset:
        return False
    run.refresh_from_db()
    return send(run, {"queue": run.queue} if run.queue else None)
