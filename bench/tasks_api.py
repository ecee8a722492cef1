"""The cost of enqueueing through Django's Tasks API, beside `.delay()` and `start_run`.

    .venv/bin/python -m bench.tasks_api [--calls 2000] [--quick] [--no-write]

Starts its own PostgreSQL and Redis (bench.common.private_stack); no worker runs, so
only the enqueueing process is timed. Each way is called `--calls` times, the ways taking
turns call by call (so load on the machine falls on all of them alike), after 20 warm-up
calls each; the time is from just before the call until it returns, the message handed
to Redis and the run recorded.
"""

import argparse
import time
from collections.abc import Callable

from .common import command_line, measured, median, percentile, private_stack, write_section

HEADING = "Enqueue through Django's Tasks API"
WARMUP = 20
INTRO = """
What one enqueue costs the calling process (a view, a shell), with the message published
and the run recorded: Django's Tasks API through Switchyard's backend
(`apps.djtasks.backend.CeleryBackend`), beside a Celery `.delay()` (recorded by the
publish signal) and Switchyard's own `start_run` (parameters validated by the catalog).
{calls} calls per way, taking turns call by call, after {warmup} warm-up calls each,
outside any transaction (each call's INSERT commits by itself and it publishes at once),
on PostgreSQL and Redis; no worker runs.

An `.enqueue()` does what `start_run` does after validation (one INSERT, then Celery
builds and publishes the message) plus the Tasks API's own steps: the task checked with
the backend, its arguments normalised to JSON, a `TaskResult` built and the
`task_enqueued` signal sent. With a priority or a `run_after` it also stores them
(one more INSERT, both in one transaction), so that a run sent later by the sweeper
keeps them.
"""


def ways() -> list[tuple[str, Callable[[], object]]]:
    from apps.demo.tasks import add
    from apps.demo.tasks_api.tasks import greet
    from apps.jobs.catalog import get_job
    from apps.jobs.dispatch import start_run
    from apps.jobs.models import Source

    job = get_job("apps.demo.tasks.add")
    low = greet.using(priority=-10)
    return [
        ("Celery `add.delay(1, 2)` (run recorded by the publish signal)", lambda: add.delay(1, 2)),
        ("Switchyard `start_run(add, {x, y})`",
         lambda: start_run(job, {"x": 1, "y": 2}, source=Source.SHELL)),
        ('Tasks API `greet.enqueue("Ada")`', lambda: greet.enqueue("Ada")),
        ('Tasks API `greet.using(priority=-10).enqueue("Ada")`', lambda: low.enqueue("Ada")),
    ]  # fmt: skip


def measure(calls: int) -> dict[str, list[float]]:
    chosen = ways()
    for _ in range(WARMUP):
        for _, call in chosen:
            call()
    timings: dict[str, list[float]] = {name: [] for name, _ in chosen}
    for _ in range(calls):
        for name, call in chosen:
            began = time.perf_counter()
            call()
            timings[name].append(time.perf_counter() - began)
    return timings


def report(timings: dict[str, list[float]], calls: int) -> str:
    lines = [
        INTRO.format(calls=f"{calls:,}", warmup=WARMUP).strip(),
        "",
        f"Command: `{command_line('bench.tasks_api')}`  ",
        measured(),
        "",
        "| way | median | p95 |",
        "|---|---:|---:|",
    ]
    for name, values in timings.items():
        lines.append(f"| {name} | {ms(median(values))} | {ms(percentile(values, 0.95))} |")
    return "\n".join([*lines, "", comparison(timings)])


def comparison(timings: dict[str, list[float]]) -> str:
    delay, start, enqueue, low = (median(values) for values in timings.values())
    return (
        f"Medians: `.enqueue()` {ms(enqueue)}, {signed(enqueue - start)} beside "
        f"`start_run` and {signed(enqueue - delay)} beside `.delay()`; with a priority "
        f"{ms(low)} ({signed(low - enqueue)}: the stored options and the transaction)."
    )


def signed(seconds: float) -> str:
    return f"{1000 * seconds:+.2f} ms"


def ms(seconds: float) -> str:
    return f"{1000 * seconds:.2f} ms"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--quick", action="store_true", help="300 calls each (bench.run)")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    if args.quick:
        args.calls = 300
    with private_stack():
        text = report(measure(args.calls), args.calls)
    print(text)
    if not args.no_write:
        write_section(HEADING, text)


if __name__ == "__main__":
    main()
