"""Result storage throughput: raw Celery + Redis results, stock django-celery-results, ours.

    .venv/bin/python -m bench.throughput [--tasks 2000] [--repeat 5] [--quick]
                                         [--only raw,stock,...] [--no-write]

Starts its own Redis and PostgreSQL. Each round starts one prefork worker (2 processes)
of one variant, listening on an idle queue; a separate process publishes N no-op tasks
to the benchmark queue; then the worker is told to consume it (`add_consumer`), and the
round lasts until the last result is stored (its date_done). Variants alternate, round
after round:

- raw: a bare Celery app (no Django), results in Redis: the baseline;
- stock: Celery + django-celery-results on PostgreSQL as installed (the worker's Django
  fixup opens a new database connection for every task);
- stock-reuse (full runs): the same with CELERY_DB_REUSE_MAX=1000;
- switchyard: the project's worker: run record kept current + result in PostgreSQL
  (SwitchyardBackend, connection reuse).

All share Celery settings (JSON, result_extended, track_started, prefetch 1, no task events).
Report: tasks/s per round, medians, the ratio of each median to raw's, and CPU per task
(worker, PostgreSQL, Redis). Written to docs/performance.md ("Result storage throughput").
"""

import argparse
import json
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import redis

from apps.devstack import processes

from .common import (
    Stack,
    command_line,
    is_raw,
    measured,
    median,
    postgres_server_pid,
    private_stack,
    raw_result_backend,
    redis_server_pid,
    reset_stack,
    running_worker,
    tree_cpu_seconds,
    worker_env,
    write_section,
)

VARIANTS = ["raw", "raw-defaults", "stock", "stock-reuse", "switchyard"]
QUICK_VARIANTS = ["raw", "stock", "switchyard"]
QUEUE, IDLE_QUEUE = "bench", "bench-idle"
HEADING = "Result storage throughput"


@dataclass
class Round:
    variant: str
    tasks: int
    seconds: float  # from add_consumer to the last result stored
    publish_seconds: float
    cpu: dict[str, float]  # CPU seconds per process group over the round

    @property
    def rate(self) -> float:
        return self.tasks / self.seconds

    def cpu_ms_per_task(self, name: str) -> float:
        return 1000 * self.cpu[name] / self.tasks


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    with private_stack() as stack:
        rounds = [run_round(stack, variant, args.tasks, number)
                  for number in range(args.repeat) for variant in args.only]  # fmt: skip
    text = report(rounds, args)
    print(text)
    if not args.no_write:
        write_section(HEADING, text)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5, help="rounds per variant")
    parser.add_argument("--quick", action="store_true", help="500 tasks, one round")
    parser.add_argument("--only", type=lambda s: s.split(","), help=",".join(VARIANTS))
    parser.add_argument("--no-write", action="store_true", help="do not touch the docs")
    args = parser.parse_args(argv)
    if args.quick:
        args.tasks, args.repeat = min(args.tasks, 500), 1
    args.only = args.only or (QUICK_VARIANTS if args.quick else VARIANTS)
    return args


# One round ------------------------------------------------------------------------------


def run_round(stack: Stack, variant: str, tasks: int, number: int) -> Round:
    reset_stack(stack)
    name = f"bench-{variant}-{number}@localhost"
    with running_worker(stack, variant, name, "-c", "2", "-Q", IDLE_QUEUE) as worker:
        publish_seconds = fill(stack, variant, tasks)
        pids = {"worker": worker.pid, "postgresql": postgres_server_pid(),
                "redis": redis_server_pid(stack.redis_url)}  # fmt: skip
        cpu_before = {key: tree_cpu_seconds(pid) for key, pid in pids.items()}
        started = datetime.now(UTC)
        from project import celery_app

        celery_app.control.add_consumer(QUEUE, destination=[name], reply=False)
        finished = wait_until_stored(stack, variant, tasks)
        cpu = {key: tree_cpu_seconds(pid) - cpu_before[key] for key, pid in pids.items()}
    seconds = (finished - started).total_seconds()
    result = Round(variant, tasks, seconds, publish_seconds, cpu)
    print(f"--- {variant} round {number + 1}: {result.rate:,.0f} tasks/s", flush=True)
    return result


def fill(stack: Stack, variant: str, tasks: int) -> float:
    """Publish the round's tasks from another process; return how long that took."""
    urls = [stack.redis_url, raw_result_backend(stack)] if is_raw(variant) else []
    out = subprocess.run(
        [processes.PYTHON, "-m", "bench.baselines.fill", variant, str(tasks), QUEUE, *urls],
        env=worker_env(stack, variant), capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])["seconds"]


def wait_until_stored(stack: Stack, variant: str, tasks: int, timeout: float = 600) -> datetime:
    """Poll until every task has its SUCCESS result; return the last one's date_done."""
    last_done = redis_last_done if is_raw(variant) else database_last_done
    broker = redis.Redis.from_url(stack.redis_url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # The store is asked only once the queue is empty, so polling costs it nothing.
        done = broker.llen(QUEUE) == 0 and last_done(stack, tasks)
        if done:
            return done
        time.sleep(0.05)
    raise RuntimeError(f"{variant}: not all {tasks} results stored after {timeout} s")


def database_last_done(stack: Stack, tasks: int) -> datetime | None:
    from django.db.models import Count, Max
    from django_celery_results.models import TaskResult

    successes = TaskResult.objects.filter(status="SUCCESS")
    stored = successes.aggregate(n=Count("id"), last=Max("date_done"))
    return stored["last"] if stored["n"] >= tasks else None


def redis_last_done(stack: Stack, tasks: int) -> datetime | None:
    client = redis.Redis.from_url(raw_result_backend(stack))
    if client.dbsize() < tasks:
        return None
    keys = list(client.scan_iter("celery-task-meta-*", count=1000))
    metas = [json.loads(raw) for raw in client.mget(keys)]
    if sum(meta["status"] == "SUCCESS" for meta in metas) < tasks:
        return None
    return max(datetime.fromisoformat(meta["date_done"]) for meta in metas).astimezone(UTC)


# Report ---------------------------------------------------------------------------------

INTRO = """
{tasks:,} no-op tasks per round, queued before the round starts (published by another
process: Switchyard's publisher also records each run), then consumed by one prefork
worker with 2 processes; a round lasts from the worker being told to consume the queue
to the last result stored. Raw = a bare Celery app with the Redis result backend (no
Django); stock = django-celery-results 2.6 as installed; stock-reuse (full runs) = stock
with `CELERY_DB_REUSE_MAX=1000`; Switchyard = the project's worker (run record kept
current + result in PostgreSQL through `apps.jobs.worker.backend.SwitchyardBackend`, connections
reused under `CONN_MAX_AGE`/`CONN_HEALTH_CHECKS`). These four share Switchyard's Celery
settings (JSON, result_extended, track_started, prefetch 1, task events off), so the
ratio to raw is like for like. Raw-defaults (full runs) is raw Celery with Celery's own
defaults instead (no STARTED write, no extended results, prefetch 4): the
kind of number STACK-NOTES quotes, and a ceiling none of the others can reach. Variants
alternate; the table shows every round, then medians and ratios. CPU columns: CPU
milliseconds per task of the worker (main + pool), PostgreSQL (all its processes) and
Redis over the round. Goal (issue 8): Switchyard ≥ 0.7x raw.

Database work per task, worker side. Stock: two new PostgreSQL connections (the fixup
closes them around every task; each costs a forked server process: the PostgreSQL CPU
column), then get_or_create (SELECT, INSERT in a transaction) for STARTED and SELECT +
full-row UPDATE for SUCCESS, about 9 round trips. Switchyard: the connection is kept,
and Django's health check (`CONN_HEALTH_CHECKS`) asks the server (`SELECT 1`) only when
something waits on the connection's socket (`project/postgresql`); STARTED is one
UPDATE that claims the run (the run record is what shows a job running; no result row
yet), and the outcome one statement that inserts the result row, with its start time,
and finishes the run (`WITH run AS (UPDATE ...) INSERT ... ON CONFLICT DO UPDATE`): 2
round trips, in autocommit, each a prepared statement (parsed and planned once per
connection). Profiled (cProfile in a pool process, 3,000 tasks), the health check had
been a sixth of a task's time and the STARTED result row (14 indexes, 6 of them the
results admin's) most of PostgreSQL's share; PostgreSQL's CPU per task fell from about
1.8 ms to 1.3 ms with both gone, and to about 0.9 ms with prepared statements (3-round
runs of `--only raw,switchyard`). What remains there is mostly index
upkeep: the result row once, the run row twice. The run row's indexes went from 16 to
10 entries per write (issue 15, migration jobs 0008): the user's own index was covered
by `run_user_newest`, and the re-run, handler, pipeline and idempotency key columns,
empty in most runs, are indexed only where set; the two UPDATEs of a task took 0.29 ms
instead of 0.38 (medians, 100,000 runs, alternating blocks of 500). Five of
django-celery-results' own single-column indexes (task_name, status, worker, date_done,
periodic_task_name) are covered by the results admin's composite ones; they stay, as
they belong to that app's migrations, which a later release may alter by name.
Outside the database, the worker's main process (which takes, hands out and
acknowledges every message, one at a time) no longer builds a redis-py client for each
delivery's and each acknowledgement's bookkeeping in Redis, as kombu did (about 0.1 ms
each: `apps/jobs/redis_clients.py`), and Celery's settings lookups in every process
read a dict instead of Django's settings object (`project/celery_settings.py`).
"""


def report(rounds: list[Round], args) -> str:
    lines = [
        INTRO.format(tasks=args.tasks).strip(),
        "",
        f"Command: `{command_line('bench.throughput')}`  ",
        measured(),
        "",
        "| variant | round | tasks/s | publish tasks/s | CPU ms/task: worker | PostgreSQL "
        "| Redis |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for number, result in enumerate(rounds):
        lines.append(row(result, str(number // len(args.only) + 1)))
    lines += ["", *summary(rounds, args.only)]
    return "\n".join(lines)


def row(r: Round, label: str) -> str:
    cpu = " | ".join(f"{r.cpu_ms_per_task(k):.2f}" for k in ("worker", "postgresql", "redis"))
    return (f"| {r.variant} | {label} | {r.rate:,.0f} | {r.tasks / r.publish_seconds:,.0f} "
            f"| {cpu} |")  # fmt: skip


def summary(rounds: list[Round], variants: list[str]) -> list[str]:
    medians = {v: median(r.rate for r in rounds if r.variant == v) for v in variants}
    references = [name for name in ("raw", "raw-defaults", "stock") if name in medians]
    lines = ["| variant | median tasks/s | " + " | ".join(f"vs {n}" for n in references) + " |",
             "|---|---:|" + "---:|" * len(references)]  # fmt: skip
    for variant, rate in medians.items():
        ratios = " | ".join(f"{rate / medians[name]:.2f}x" for name in references)
        lines.append(f"| {variant} | {rate:,.0f} | {ratios} |")
    if {"raw", "switchyard"} <= medians.keys():
        lines += ["", verdict(medians, rounds)]
    return lines


def verdict(medians: dict[str, float], rounds: list[Round]) -> str:
    ratio = medians["switchyard"] / medians["raw"]
    others = [f"{medians['switchyard'] / medians[name]:.2f}x {label}"
              for name, label in (("raw-defaults", "raw Celery with its defaults"),
                                  ("stock", "stock")) if name in medians]  # fmt: skip
    count = sum(r.variant == "switchyard" for r in rounds)
    return (f"**Goal 1 (result storage at least 0.7x raw Celery with Redis results)**: "
            f"{'met' if ratio >= 0.7 else 'not met'}: {ratio:.2f}x raw with the same "
            f"settings{''.join(', ' + o for o in others)} (medians of {count} rounds of "
            f"{rounds[0].tasks:,} tasks; `{command_line('bench.throughput')}`).")  # fmt: skip


if __name__ == "__main__":
    main()
