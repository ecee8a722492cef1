"""The tasks of Celery's getting-started walkthrough, on Switchyard."""

from celery import shared_task


@shared_task(acks_late=True, reject_on_worker_lost=True)
def add(x: int, y: int) -> int:
    return x + y


@shared_task(acks_late=True, reject_on_worker_lost=True)
def mul(x: int, y: int) -> int:
    return x * y


@shared_task(acks_late=True, reject_on_worker_lost=True)
def xsum(numbers: list[int]) -> int:
    return sum(numbers)
