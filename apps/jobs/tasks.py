from typing import Annotated

from celery import current_task, shared_task

from . import bulk, packs, sweeper
from .catalog import job
from .params import Choices, MaxLength, Range


@shared_task(ignore_result=True, switchyard_record=False)
def sweep() -> None:
    """Housekeeping every 30 s: take back the runs of lost workers, send runs left
    unsent, reconcile orphaned states, then send runs lost by the broker (a queued run
    whose outcome is stored is reconciled, not sent again)."""
    sweeper.recover_lost_workers()
    sweeper.send_pending()
    sweeper.reconcile()
    sweeper.resend_lost()
    for more in sweeper.more_sweeps:
        more()


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True,
             switchyard_record=False)  # fmt: skip
def run_pack(self, job_name: str, items: list) -> int:
    """Several runs of one job in one message (apps/jobs/packs.py)."""
    return packs.run_pack(self, job_name, items)


@shared_task(ignore_result=True, switchyard_record=False)
def pack_failed(request, exc, traceback) -> None:
    """run_pack's error callback: puts the runs of a pack that failed as a whole right."""
    packs.pack_failed(request, exc, traceback)


@job(title="Act on many runs", group="Housekeeping", schedulable=False)
def bulk_runs(
    action: Annotated[str, Choices(lambda: bulk.Action.values)],
    query: Annotated[str, MaxLength(20000)],
    expected: Annotated[int, Range(0, 10**9)],
) -> dict:
    """Retry, cancel or discard the runs a /runs/ filter selects (the bulk actions of
    /runs/, the API and the CLI start it for sets of more than 500 runs), as the person
    who started it: their visibility, and only the jobs they may run."""
    return bulk.run_as_job(current_task.request.id, action, query, expected)
