"""Jobs and pipelines the pipeline tests run (registered when the tests import this)."""

import os
import time
from typing import Annotated

from apps.demo.tasks import add, square, total
from apps.jobs.catalog import job
from apps.jobs.params import Range, Secret
from apps.jobs.progress import report_progress
from apps.pipelines.declare import Each, Parallel, Result, Step, pipeline
from tests.jobs.secret_job import use_secret


class Broken(RuntimeError):
    pass


@job(title="Always fails (test)", group="Tests", bind=True, autoretry_for=(Broken,),
     max_retries=2, default_retry_delay=0)  # fmt: skip
def always_fails(self, x: int = 0) -> int:
    raise Broken(f"attempt {self.request.retries + 1} fails")


@job(title="Wait, reporting progress (test)", group="Tests", cancellable=True)
def wait_a_while(seconds: Annotated[float, Range(0, 60)] = 30) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        report_progress(0, 1, "waiting")
        time.sleep(0.05)
    return "waited"


@pipeline("Chain (test)", group="Tests")
def chain_of_adds(start: int = 1) -> list:
    return [
        Step("first", add, x=start, y=1),
        Step("second", add, x=Result("first"), y=10),
        Step("third", add, x=Result("second"), y=Result("first")),
    ]


@pipeline("Group (test)", group="Tests")
def parallel_squares(a: int = 2, b: int = 3) -> list:
    return [Parallel("both", Step("a", square, x=a), Step("b", square, x=b))]


@pipeline("Chord with a failing member (test)", group="Tests")
def failing_chord() -> list:
    return [
        Step("begin", add, x=1, y=1),
        Parallel(
            "members",
            Step("ok1", square, x=2),
            Step("bad", always_fails),
            Step("ok2", square, x=3),
        ),
        Step("join", add, x=Result("ok1"), y=Result("ok2")),
        Step("after", add, x=Result("join"), y=1),
    ]


@job(title="Fails while a file exists (test)", group="Tests")
def fails_while(marker: str) -> int:
    if os.path.exists(marker):
        raise Broken(f"{marker} exists")
    return 100


@pipeline("Mended after a failure (test)", group="Tests")
def mended(marker: str = "", count: int = 3) -> list:
    return [
        Each("square", square, [{"x": i} for i in range(count)]),
        Step("total", total, numbers=Result("square")),
        Step("check", fails_while, marker=marker),
        Step("after", add, x=Result("total"), y=Result("check")),
    ]


@pipeline("Slow (test)", group="Tests")
def slow(seconds: float = 30) -> list:
    return [
        Parallel(
            "waits",
            Step("wait1", wait_a_while, seconds=seconds),
            Step("wait2", wait_a_while, seconds=seconds),
        ),
        Step("after", add, x=1, y=2),
    ]


@pipeline("With a secret (test)", group="Tests")
def with_a_secret(token: Secret[str], label: str = "piped") -> list:
    """The pipeline's secret given to two steps; the second also takes a Result."""
    return [
        Step("first", use_secret, token=token, label=label),
        Step("second", use_secret, token=token, label=Result("first")),
    ]
