from celery import shared_task

from . import sweeper


@shared_task(ignore_result=True, switchyard_record=False)
def sweep() -> None:
    """Housekeeping every 30 s: take back the runs of lost workers, send runs left
    unsent or lost by the broker, reconcile orphaned states."""
    sweeper.recover_lost_workers()
    sweeper.send_pending()
    sweeper.resend_lost()
    sweeper.reconcile()
