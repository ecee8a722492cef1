"""Demo jobs: Celery's walkthrough task, plus progress, cancel and retries to try."""

import time
from typing import Annotated

from celery import shared_task

from apps.jobs.catalog import job
from apps.jobs.params import Range
from apps.jobs.progress import report_progress

# Integers a JSON reader in any language gets back exactly (JavaScript's safe range).
SafeInt = Annotated[int, Range(-(2**53 - 1), 2**53 - 1)]


class FlakyError(Exception):
    """The transient failure `flaky` raises until it has failed enough times."""


@job(title="Add two numbers", group="Demo")
def add(x: SafeInt, y: SafeInt) -> int:
    """Return x + y: the task of Celery's getting-started walkthrough."""
    return x + y


@job(title="Count down", group="Demo", cancellable=True)
def countdown(seconds: Annotated[int, Range(0, 3600)] = 10) -> str:
    """Wait the given number of seconds, reporting progress each second."""
    for elapsed in range(seconds):
        report_progress(elapsed, seconds, f"{seconds - elapsed} s to go")
        time.sleep(1)
    report_progress(seconds, seconds, "done")
    return f"counted down {seconds} s"


@job(
    title="Fail, then succeed",
    group="Demo",
    bind=True,
    autoretry_for=(FlakyError,),
    retry_backoff=1,
    retry_backoff_max=4,
    retry_jitter=False,
    max_retries=5,
)
def flaky(self, failures: Annotated[int, Range(0, 10)] = 2) -> str:
    """Fail `failures` times with a transient error, then succeed (automatic retries)."""
    if self.request.retries < failures:
        raise FlakyError(f"attempt {self.request.retries + 1} of {failures + 1} fails")
    return f"succeeded after {failures} failure(s)"


@job(title="Square a number", group="Demo")
def square(x: SafeInt, pause: Annotated[float, Range(0, 60)] = 0) -> int:
    """Return x * x, after `pause` seconds (a step of the demo pipeline)."""
    time.sleep(pause)
    return x * x


@job(title="Add up numbers", group="Demo")
def total(numbers: list[SafeInt]) -> int:
    """Return the sum of the numbers (the join of the demo pipeline)."""
    return sum(numbers)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def mul(x: int, y: int) -> int:
    return x * y


@shared_task(acks_late=True, reject_on_worker_lost=True)
def xsum(numbers: list[int]) -> int:
    return sum(numbers)
