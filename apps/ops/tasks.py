from celery import shared_task

from . import alerts


@shared_task(ignore_result=True, switchyard_record=False)
def check_alerts() -> None:
    """Every minute (a default schedule): failed runs, missed schedules, beat down."""
    alerts.check_alerts()
