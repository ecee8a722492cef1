from celery import shared_task

from . import sweeper


@shared_task(ignore_result=True, switchyard_record=False)
def sweep() -> None:
    """Housekeeping every 30 s: send runs left unsent, reconcile orphaned states."""
    sweeper.send_pending()
    sweeper.reconcile()
