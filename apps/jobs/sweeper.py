"""Find runs that fell between the cracks, and put them right.

- `send_pending`: runs recorded but never sent (the broker was down) are sent once.
- `reconcile`: runs whose worker died before it could update the run record take
  the final state Celery stored in django-celery-results.
- `resend_lost`: on Redis, a worker killed between taking a message and recording it
  as unacknowledged loses it; a run never delivered whose message the broker no longer
  holds is sent again (late-acked jobs only: a job not safe to run twice is not).
- `recover_lost_workers`: a worker holding started runs that answered no ping for
  WORKER_LOST_AFTER_SECONDS (apps.jobs.liveness) is lost; its runs of jobs safe to run
  again are sent again, the others failed with a note. Either way the lost execution no
  longer holds the run, so a worker that was only cut off writes nothing when it comes
  back (models.Run.attempt).
- `stuck_runs` / `resend`: queued too long with no worker, or started on a worker that
  is gone; shown on the dashboard and the run page, and re-sent from there (only while
  `stuck_runs` still holds it stuck: a healthy run is refused, `NotStuck`).

A run whose start was deferred (a Tasks API `run_after`, Celery's `eta` or `countdown`:
`Run.eta`) waits from its due time, not from when it was queued (`waited_since`): it is
neither stuck nor lost while a worker holds it until then.
"""

import logging
import time
from datetime import timedelta

from billiard.exceptions import WorkerLostError
from celery import current_app
from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django_celery_results.models import TaskResult

from . import broker_held, inspect, liveness, secrets
from .catalog import queue_names
from .dispatch import send
from .models import HELD_STATES, Run, State
from .worker.recording import CELERY_STATES

log = logging.getLogger(__name__)
BATCH = 500
# Apps above jobs add sweeps of their own, run after these by the same task (apps.pipelines:
# a pipeline whose step ended outside its task, e.g. by a time limit, moves on).
more_sweeps: list = []
RESEND_AT_MOST = 3
LOST_NOTE = "Sent again: its message was lost by the broker."


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
        if not _send(run):
            break
        sent += 1
    return sent


def _claim(run: Run) -> bool:
    return run.claim_send(State.PENDING_SEND)


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
        fixed += Run.objects.filter(task_id=task_id).finish(CELERY_STATES[status], at=date_done)
    return fixed


def resend_lost(older_than: timedelta | None = None, recheck_after: float = 1.0) -> int:
    """Send again the late-acked runs, queued and never delivered for `older_than`, whose
    message is in no queue and not unacknowledged: in two looks, `recheck_after` apart,
    so a message a worker is taking at that moment is not counted lost."""
    if older_than is None:
        older_than = timedelta(seconds=settings.SWEEP_LOST_AFTER_SECONDS)
    lost = _not_held(_undelivered(timezone.now() - older_than))
    if lost and recheck_after:
        time.sleep(recheck_after)
    sent = 0
    for run in _not_held(lost):
        if not _claim_lost(run):
            continue  # started meanwhile, or another sweeper sent it
        log.warning("run %s: the broker no longer holds its message; sending it again", run.pk)
        run.refresh_from_db()
        sent += _send(run)
    return sent


def _claim_lost(run: Run) -> bool:
    """Still as found, and not sent again since by another sweeper (send_attempts). The
    run stays queued: a sweeper's send_pending never takes it for one left unsent."""
    return run.claim_send(State.QUEUED, note=LOST_NOTE)


def _undelivered(cutoff) -> list[Run]:
    """Queued before `cutoff`, never started, of a late-acked job whose queue is known,
    and not sent by a sweeper RESEND_AT_MOST times already: a message every worker
    drops (a task the workers do not know) is not sent again for ever."""
    late_acked = [name for name, task in current_app.tasks.items() if task.acks_late]
    runs = Run.objects.filter(
        waited_since(cutoff),
        state=State.QUEUED,
        deliveries=0,
        send_attempts__lt=RESEND_AT_MOST,
        job_name__in=late_acked,
    )
    known = set(queue_names())
    return [run for run in runs.order_by("queued_at")[:BATCH] if _queue(run) in known]


def _not_held(runs: list[Run]) -> list[Run]:
    if not runs:
        return []
    held = broker_held.held_task_ids({_queue(run) for run in runs})
    return [] if held is None else [run for run in runs if run.task_id not in held]


def _queue(run: Run) -> str:
    """The queue the run's message went to: recorded at publish, or where Celery routes
    its task (the task's own queue, task_routes, the default queue)."""
    if run.queue:
        return run.queue
    task = current_app.tasks.get(run.job_name)
    options = {"queue": task.queue} if getattr(task, "queue", None) else {}
    return current_app.amqp.router.route(options, run.job_name)["queue"].name


def recover_lost_workers(answering: set[str] | None = None) -> dict[str, int]:
    """Take back the runs of lost workers: send again those of jobs safe to run twice
    (late-acked), fail the others with a note. `answering`: the workers that answered
    just now (None: ping them). Counts of runs {"resent": n, "failed": n}."""
    counts = {"resent": 0, "failed": 0}
    if liveness.lost_after() is None:
        return counts
    if answering is None:
        answering = inspect.ping_workers()
        if answering is None:
            return counts  # the broker is unreachable: no one is judged
    for worker in liveness.lost_workers(answering):
        for run in Run.objects.filter(worker=worker, state__in=HELD_STATES)[:BATCH]:
            try:
                outcome = take_back(run, worker)
            except DatabaseError:
                log.exception("run %s: could not take it back from lost worker %s", run.pk, worker)
                continue
            if outcome:
                counts[outcome] += 1
    return counts


def take_back(run: Run, worker: str) -> str | None:
    """Take one run back from a lost `worker`, if it still holds it (same execution):
    "resent", "failed", or None (it moved on meanwhile, or its job is unknown here)."""
    task = current_app.tasks.get(run.job_name)
    if task is None:
        log.warning("run %s of %s: job unknown to this process; left to a sweeper that "
                    "knows whether it is safe to run again", run.pk, run.job_name)  # fmt: skip
        return None
    silent = f"its worker {worker} answered no ping for {settings.WORKER_LOST_AFTER_SECONDS} s"
    held = Run.objects.filter(pk=run.pk, worker=worker, attempt=run.attempt)
    # The run and its result row change together: a late outcome of the lost execution
    # either came first (and the run is no longer held) or is refused (worker/backend.py).
    with transaction.atomic():
        if task.acks_late:
            if not held.take_back(f"Sent again: {silent} while it ran."):
                return None
            current_app.backend.mark_as_retry(run.task_id, WorkerLostError(silent))
        else:
            note = f"Failed: {silent} while it ran; not run again (not idempotent)."
            if not held.fail_held(note):
                return None
            current_app.backend.mark_as_failure(run.task_id, WorkerLostError(note))
    log.warning("run %s: %s; %s", run.task_id, silent,
                "sent again" if task.acks_late else "failed (not safe to run again)")  # fmt: skip
    if not task.acks_late:
        return "failed"
    run.refresh_from_db()
    if _claim(run):  # once among sweepers: send_pending may see it pending_send too
        _send(run)  # if the broker refuses, it waits as pending_send for send_pending
    return "resent"


def waited_since(cutoff) -> Q:
    """Runs waiting since before `cutoff`: queued before it and, if their start was
    deferred (`Run.eta`), due before it too. A worker holds a deferred run's message
    until it is due, so its wait for a worker begins then, not when it was queued."""
    return Q(queued_at__lte=cutoff) & (Q(eta__isnull=True) | Q(eta__lte=cutoff))


def stuck_runs(alive_workers: set[str] | None = None):
    """Queued past the threshold (counted from its due time if its start was deferred:
    `waited_since`), or started on a worker not in `alive_workers`."""
    cutoff = timezone.now() - timedelta(seconds=settings.STUCK_QUEUED_AFTER_SECONDS)
    stuck = Q(state=State.QUEUED) & waited_since(cutoff)
    if alive_workers is not None:
        # A pipeline's run is moved on by its steps, not by the worker that started it.
        has_steps = Exists(Run.objects.filter(pipeline=OuterRef("pk")))
        stuck |= (Q(state__in=[State.STARTED, State.PROGRESS]) & ~Q(worker__in=alive_workers)
                  & ~has_steps)  # fmt: skip
    return Run.objects.filter(stuck)


def alive_workers() -> set[str] | None:
    """The workers that answered the last inspection (kept a while, as the dashboard's);
    None when the broker is unreachable: then no started run is judged stuck."""
    snap = inspect.snapshot()
    return snap.worker_names if snap.broker_ok else None


def is_stuck(run: Run, alive: set[str] | None) -> bool:
    """`stuck_runs`' rule for one run: its page shows Resend by it, and `resend` keeps it."""
    return stuck_runs(alive).filter(pk=run.pk).exists()


class NotStuck(Exception):
    """Why a run was not sent again by hand: it is not stuck (shown to the person)."""


def resend(run: Run, alive: set[str] | None) -> bool:
    """Send a stuck run's message again, same task id: a worker runs it at most once.
    `alive`: the workers answering (`alive_workers`). NotStuck, and nothing changed, for
    a run `stuck_runs` does not hold stuck as the UPDATE runs: a healthy run is never
    taken from its execution. False if the broker refused it (pending_send, for the
    sweeper)."""
    note = "Re-sent by hand after it got stuck."
    if not stuck_runs(alive).filter(pk=run.pk).mark_unsent(note):
        run.refresh_from_db()
        raise NotStuck(not_stuck_because(run, alive))
    run.refresh_from_db()
    return _send(run)


def not_stuck_because(run: Run, alive: set[str] | None) -> str:
    """Why `stuck_runs` does not hold this run stuck, in a reader's words."""
    if run.is_finished:
        return f"it has already finished ({run.get_state_display().lower()})"
    if run.state == State.QUEUED and run.eta is not None and run.eta > timezone.now():
        due = timezone.localtime(run.eta)
        return f"it is deferred until {due:%Y-%m-%d %H:%M:%S %Z}: a worker holds it until then"
    if run.state == State.QUEUED and run.eta is not None:
        return (f"it has been due for less than {settings.STUCK_QUEUED_AFTER_SECONDS} s; "
                "a worker may still pick it up")  # fmt: skip
    if run.state == State.QUEUED:
        return (f"it has been queued for less than {settings.STUCK_QUEUED_AFTER_SECONDS} s; "
                "a worker may still pick it up")  # fmt: skip
    if run.state in HELD_STATES and alive is None:
        return "the broker is unreachable, so whether its worker answers is not known"
    if run.state in HELD_STATES and run.worker in alive:
        return f"its worker {run.worker} is answering"
    if run.state in HELD_STATES:
        return "it is a pipeline: its steps move it on"
    return f"it is {run.get_state_display().lower()}"


def _send(run: Run) -> bool:
    """Send a recorded run again, to the queue it was recorded with, if any. A run
    whose secrets were stored masked cannot be: it fails with a note (True: handled)."""
    if missing := secrets.withheld(run.job_name, run.parameters, run.args):
        note = f"Not sent: its secret parameters ({', '.join(missing)}) are not stored."
        Run.objects.filter(pk=run.pk).finish(State.FAILED, note=note + " Start it again.")
        return True
    options = {"queue": run.queue} if run.queue else {}
    if run.eta is not None and run.eta > timezone.now():
        options["eta"] = run.eta  # still deferred: a worker holds it until then
    return send(run, options or None)
