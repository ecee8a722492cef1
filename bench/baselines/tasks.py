"""The task the throughput and memory benchmarks run: nothing at all."""

import time

from celery import shared_task


@shared_task(name="bench.noop")
def noop() -> None:
    return None


@shared_task(name="bench.clock")
def clock() -> float:
    """When the task body started (time.time()): the latency baseline's end point."""
    return time.time()
