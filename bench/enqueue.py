"""Enqueue, end to end: N enqueues, then until every result is stored, beside raw Celery.

    .venv/bin/python -m bench.enqueue [--tasks 2000] [--repeat 3] [--quick]
                                      [--only raw,stock,switchyard,start_run,bulk,...]
                                      [--processes 1,4] [--calls 2000] [--no-write]
                                      [--durable [--async-commit]]

Starts its own Redis and PostgreSQL (bench.common.private_stack). Each round starts one
prefork worker (2 processes) of the variant, consuming the default queue; then 1 (or 4)
enqueueing processes (bench.baselines.enqueuer), set up and connected beforehand, make
N calls in all (N/4 each when 4), timing each call; the round lasts from the first call
to the last result stored (its date_done). Variants alternate, round after round:

- raw: a bare Celery app (no Django), `bench.noop.delay()`, results in Redis;
- stock: Celery + django-celery-results on PostgreSQL as installed, `bench.noop.delay()`;
- switchyard: `apps.demo.tasks.add.delay(1, 2)` (run recorded by the publish signal);
- start_run: Switchyard's `start_run(add, {x, y})`, the CLI/API/web path minus HTTP;
- bulk: `start_runs(add, [{x, y}] * N)`, one call for all (the API's and CLI's bulk
  path minus HTTP): one transaction of multi-row INSERTs, then one batch of messages;
- packed: the same with `per_message=25` (apps/jobs/packs.py): 25 runs per message;
- atomic_delay: N `add.delay(1, 2)` calls inside one `transaction.atomic()`.

Then, in this process with no worker running, the breakdown: where an enqueue's time
goes (`breakdown()`), `--calls` of each way, the ways taking turns call by call.
Written to docs/performance.md ("Enqueue, end to end"). `--profile` also prints the
top of a cProfile of `--calls` `add.delay()` calls (not written to the docs).
"""

import argparse
import contextlib
import cProfile
import io
import json
import os
import pstats
import subprocess
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import redis

from apps.devstack import processes

from .common import (
    Stack,
    command_line,
    is_raw,
    measured,
    median,
    percentile,
    private_stack,
    raw_result_backend,
    reset_stack,
    running_worker,
    worker_env,
    write_section,
)
from .throughput import database_last_done, redis_last_done

HEADING = "Enqueue, end to end"
VARIANTS = ["raw", "stock", "switchyard", "start_run", "bulk", "packed", "atomic_delay"]
WORKER_OF = {"raw": "raw", "stock": "stock", "switchyard": "switchyard",
             "start_run": "switchyard", "bulk": "switchyard", "packed": "switchyard",
             "atomic_delay": "switchyard"}  # fmt: skip
LABELS = {
    "raw": "raw Celery `.delay()`, Redis results",
    "stock": "stock django-celery-results (PostgreSQL)",
    "switchyard": "Switchyard `add.delay(1, 2)`",
    "start_run": "Switchyard `start_run(add, {x, y})`",
    "bulk": "Switchyard `start_runs(add, [{x, y}, ...])`",
    "packed": "Switchyard `start_runs(add, [{x, y}, ...], per_message=25)`",
    "atomic_delay": "Switchyard `add.delay(1, 2)` x N in one `atomic()`",
}
SINGLE = ("switchyard", "start_run")  # the single-enqueue goal
BULK = ("bulk", "packed", "atomic_delay")  # the bulk goal
DEFAULT_QUEUE = "celery"


@dataclass
class Round:
    variant: str
    processes: int
    tasks: int
    seconds: float  # first call to the last result stored
    calls: list[float]  # seconds of each enqueue call, all processes
    lag: float  # last result stored minus the last call's end

    @property
    def rate(self) -> float:
        return self.tasks / self.seconds


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.async_commit:  # every process of the run reads it: enqueuers, this one
        os.environ["RUN_RECORDS_ASYNC_COMMIT"] = "true"
    with private_stack(durable=args.durable) as stack:
        rounds = [run_round(stack, variant, args.tasks, count, number)
                  for number in range(args.repeat) for count in args.processes
                  for variant in args.only]  # fmt: skip
        reset_stack(stack)
        pieces = breakdown(args.calls)
        profile_text = profile(args.calls) if args.profile else ""
        reset_stack(stack)
    text, pieces_text = report(rounds, args), "\n".join(breakdown_table(pieces, args))
    print(text, pieces_text, profile_text, sep="\n\n")
    if args.no_write:
        return
    if args.durable:  # its own subsection: `make bench` runs the default only
        title = ASYNC_COMMIT_TITLE if args.async_commit else DURABLE_TITLE
        pieces_text = f"**{BREAKDOWN_TITLE}, {title[0].lower()}{title[1:]}**\n\n{pieces_text}"
        write_section(HEADING, f"{text}\n\n{pieces_text}", subheading=title)
    else:
        write_section(HEADING, text)
        write_section(HEADING, pieces_text, subheading=BREAKDOWN_TITLE)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=2000, help="enqueues per round")
    parser.add_argument("--repeat", type=int, default=3, help="rounds per variant")
    parser.add_argument("--processes", type=lambda s: [int(n) for n in s.split(",")],
                        default=[1, 4], help="enqueueing processes, e.g. 1,4")  # fmt: skip
    parser.add_argument("--calls", type=int, default=2000, help="calls per way (breakdown)")
    parser.add_argument("--quick", action="store_true", help="300 enqueues, one round, 1 process")
    parser.add_argument("--only", type=lambda s: s.split(","), help=",".join(VARIANTS))
    parser.add_argument("--profile", action="store_true", help="print a cProfile too")
    parser.add_argument("--durable", action="store_true",
                        help="PostgreSQL with fsync and synchronous_commit on")  # fmt: skip
    parser.add_argument("--async-commit", action="store_true",
                        help="RUN_RECORDS_ASYNC_COMMIT=true (with --durable)")  # fmt: skip
    parser.add_argument("--no-write", action="store_true", help="do not touch the docs")
    args = parser.parse_args(argv)
    if args.quick:
        args.tasks, args.repeat, args.processes = min(args.tasks, 300), 1, [1]
        args.calls = min(args.calls, 300)
    args.only = args.only or VARIANTS
    return args


# One round ------------------------------------------------------------------------------


def run_round(stack: Stack, variant: str, tasks: int, count: int, number: int) -> Round:
    reset_stack(stack)
    kind = WORKER_OF[variant]
    name = f"enqueue-{variant}-{count}-{number}@localhost"
    with running_worker(stack, kind, name, "-c", "2"):
        outputs = enqueue(stack, variant, tasks, count)
        last_done = wait_until_stored(stack, kind, tasks)
    began = min(out["began"] for out in outputs)
    ended = max(out["ended"] for out in outputs)
    result = Round(variant, count, tasks, last_done - began,
                   [c for out in outputs for c in out["calls"]], last_done - ended)  # fmt: skip
    print(f"--- {variant} x{count} round {number + 1}: {result.rate:,.0f} tasks/s, "
          f"{1000 * median(result.calls):.2f} ms per call", flush=True)  # fmt: skip
    return result


def enqueue(stack: Stack, variant: str, tasks: int, count: int) -> list[dict]:
    """Start `count` enqueuers, let them go at once, return what each reports."""
    kind = WORKER_OF[variant]
    urls = [stack.redis_url, raw_result_backend(stack)] if is_raw(kind) else []
    shares = [tasks // count + (i < tasks % count) for i in range(count)]
    children = [
        subprocess.Popen(
            [processes.PYTHON, "-m", "bench.baselines.enqueuer", variant, str(share), *urls],
            env=worker_env(stack, kind), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True,
        )
        for share in shares
    ]  # fmt: skip
    try:
        for child in children:
            if child.stdout.readline().strip() != "ready":
                raise RuntimeError(f"enqueuer for {variant} failed to start")
        for child in children:
            child.stdin.write("go\n")
            child.stdin.flush()
        outputs = [json.loads(child.communicate()[0].strip().splitlines()[-1])
                   for child in children]  # fmt: skip
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    return outputs


def wait_until_stored(stack: Stack, kind: str, tasks: int, timeout: float = 600) -> float:
    """Poll until every task has its SUCCESS result; the last one's date_done (epoch s)."""
    last_done = redis_last_done if is_raw(kind) else database_last_done
    broker = redis.Redis.from_url(stack.redis_url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = broker.llen(DEFAULT_QUEUE) == 0 and last_done(stack, tasks)
        if done:
            return done.timestamp()
        time.sleep(0.05)
    raise RuntimeError(f"{kind}: not all {tasks} results stored after {timeout} s")


# Where an enqueue's time goes -----------------------------------------------------------


class Clock:
    """Seconds spent in named pieces during the current call, kept per call."""

    def __init__(self) -> None:
        self.current: dict[str, float] = defaultdict(float)
        self.per_call: dict[str, list[float]] = defaultdict(list)

    @contextlib.contextmanager
    def piece(self, name: str):
        began = time.perf_counter()
        try:
            yield
        finally:
            self.current[name] += time.perf_counter() - began

    def wrap(self, name: str, function: Callable) -> Callable:
        def timed(*args, **kwargs):
            with self.piece(name):
                return function(*args, **kwargs)

        return timed

    def call(self, prefix: str, function: Callable[[], object]) -> None:
        self.current = defaultdict(float)
        with self.piece("total"):
            function()
        for name, seconds in self.current.items():
            self.per_call[f"{prefix}{name}"].append(seconds)


def breakdown(calls: int) -> dict[str, list[float]]:
    """`add.delay()` and `start_run` in this process, plain and with their pieces timed."""
    from celery import signals
    from django.db import connection
    from kombu import messaging

    from apps.demo.tasks import add
    from apps.jobs import dispatch, sending
    from apps.jobs.catalog import get_job
    from apps.jobs.models import Source
    from apps.jobs.worker import recording

    job = get_job("apps.demo.tasks.add")
    plain = {
        "delay": lambda: add.delay(1, 2),
        "start_run": lambda: dispatch.start_run(job, {"x": 1, "y": 2}, source=Source.SHELL),
    }
    clock = Clock()
    for _ in range(20):  # warm-up
        for call in plain.values():
            call()
    floors = round_trips(connection)
    # 1. Untouched, then with Switchyard's publish handlers disconnected (Celery alone),
    # and the floor of one round trip to each server.
    for _ in range(calls):
        for name, call in plain.items():
            clock.call(f"plain {name} ", call)
        with disconnected(signals, recording):
            clock.call("bare delay ", plain["delay"])
        with no_commit_wait(connection):
            clock.call("no-wait delay ", plain["delay"])
        for name, call in floors.items():
            clock.call(f"floor {name} ", call)
    # 2. The pieces, timed from outside (nothing in apps/ changes).
    with instrumented(clock, signals, recording, (dispatch, sending), messaging, connection):
        for _ in range(calls):
            for name, call in plain.items():
                clock.call(f"timed {name} ", call)
    return dict(clock.per_call)


def round_trips(connection) -> dict[str, Callable[[], object]]:
    """One PostgreSQL `SELECT 1` and one Redis PING on the connections the calls use."""
    from project import celery_app

    def select_one():
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")

    def ping():
        with celery_app.producer_or_acquire() as producer:
            producer.channel.client.ping()

    return {"select": select_one, "ping": ping}


@contextlib.contextmanager
def no_commit_wait(connection):
    """synchronous_commit off for this session: a commit does not wait for its WAL
    flush (the difference is the flush wait; none when the cluster runs with fsync off)."""
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET synchronous_commit")


@contextlib.contextmanager
def disconnected(signals, recording):
    signals.before_task_publish.disconnect(recording.record_dispatch)
    signals.after_task_publish.disconnect(recording.record_sent)
    try:
        yield
    finally:
        signals.before_task_publish.connect(recording.record_dispatch)
        signals.after_task_publish.connect(recording.record_sent)


@contextlib.contextmanager
def instrumented(clock: Clock, signals, recording, modules, messaging, connection):
    """Time the publish handlers, kombu's publish and serialization, every SQL statement
    (by its first word; the run's prepared INSERT, which goes round Django's cursor, as
    `insert_run`), start_run's validation, INSERT and send."""
    dispatch, sending = modules
    before = clock.wrap("before_task_publish handler", recording.record_dispatch)
    after = clock.wrap("after_task_publish handler", recording.record_sent)
    originals = {
        (messaging.Producer, "publish"): messaging.Producer.publish,
        (messaging.Producer, "_prepare"): messaging.Producer._prepare,
        (dispatch, "clean_parameters"): dispatch.clean_parameters,
        (dispatch, "insert"): dispatch.insert,
        (dispatch, "send"): dispatch.send,
        (sending, "insert_run"): sending.insert_run,
    }
    names = {"publish": "kombu Producer.publish (incl. serialization, Redis)",
             "_prepare": "serialization (kombu _prepare)",
             "clean_parameters": "clean_parameters (validation)",
             "insert": "insert(run) (Run.save)", "send": "send(run) (send plan)",
             "insert_run": "insert_run"}  # fmt: skip

    def sql(execute, statement, params, many, context):
        clock.current["SQL statements"] += 1
        with clock.piece(f"SQL {statement.split(None, 1)[0].upper()}"):
            return execute(statement, params, many, context)

    with disconnected(signals, recording):
        signals.before_task_publish.connect(before)
        signals.after_task_publish.connect(after)
        for (owner, attribute), function in originals.items():
            setattr(owner, attribute, clock.wrap(names[attribute], function))
        sending.insert_run = counted(clock, sending.insert_run)
        try:
            with connection.execute_wrapper(sql):
                yield
        finally:
            for (owner, attribute), function in originals.items():
                setattr(owner, attribute, function)
            signals.before_task_publish.disconnect(before)
            signals.after_task_publish.disconnect(after)


def counted(clock: Clock, function: Callable) -> Callable:
    """One more SQL statement per call (a statement Django's execute_wrapper misses)."""

    def count(*args, **kwargs):
        clock.current["SQL statements"] += 1
        return function(*args, **kwargs)

    return count


def profile(calls: int) -> str:
    from apps.demo.tasks import add

    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(calls):
        add.delay(1, 2)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(40)
    return f"cProfile of {calls} add.delay(1, 2) calls, by cumulative time:\n{out.getvalue()}"


# Report ---------------------------------------------------------------------------------

INTRO = """
What a caller feels: {tasks:,} enqueues, then until every result is stored, {modes},
with one prefork worker (2 processes) running throughout. A round lasts from the first
call to the last result's `date_done`; each enqueueing process is started, set up and
connected before the clock starts. Raw = a bare Celery app (no Django) with Redis
results; stock = Celery with django-celery-results 2.6 on PostgreSQL as installed; both
`.delay()` a no-op task. The Switchyard rows run `apps.demo.tasks.add` (a run record is
written before each message is published) on Switchyard's worker: one by one
(`add.delay()`, `start_run`), or all in one call (bulk: `start_runs`, the API's and
CLI's bulk path minus HTTP: every parameter set validated, one transaction of
multi-row INSERTs, then the messages pipelined 100 at a time; packed: the same with
`per_message=25`, 25 runs per message, each run traced on the worker as if it had
come alone, so each still has its own record, result row and state changes; atomic_delay: the
`.delay()` calls inside one `transaction.atomic()`, each run written in the
transaction and the messages published together on commit), where "call" is the
whole call's time divided by the runs it started. All share
Switchyard's Celery settings (JSON, result_extended, track_started, prefetch 1, task
events off).

{durability}

Variants alternate; "call" = median time of one enqueue call in the enqueueing process
(all processes' calls); "lag" = last result stored minus the last call's return (near
0: the worker kept up, and the enqueueing side is the bottleneck). Goals (issue 15):
single enqueue at most 1.5x raw's `.delay()`; one process end to end at least 0.7x raw.
"""

FAST = """The private PostgreSQL runs with fsync and synchronous_commit off (bench.common, as
in every benchmark here), so no row pays a WAL flush at commit; the issue's numbers
(fsync on) did: see "{durable}" below (`--durable`) for that."""
DURABLE = """PostgreSQL runs with its own defaults here (`--durable`: fsync, synchronous_commit
and full_page_writes on), so every autocommit statement waits for its WAL flush, as in
production."""
ASYNC_COMMIT = """PostgreSQL runs with its own defaults here (`--durable`), and Switchyard with
`RUN_RECORDS_ASYNC_COMMIT=true` (`--async-commit`): a run record written at enqueue
commits without waiting for its WAL flush (synchronous_commit off for its own
transaction only); a publish that fails still leaves its run on disk, since setting it
back to `pending_send` commits with the flush (docs/reliability.md, "Enqueue without
the flush"). So does a worker's claim of a run, the first of its two writes there; the
second (the run's outcome with its stored result), and every other statement, wait for
their flush as above. Reading it: an enqueue no longer waits on the disk (the
breakdown's untouched and synchronous_commit-off rows match). What is left over raw
Celery is the INSERT's round trip and Python's share of it (the Run, its column values,
psycopg's adaptation); the run table's ten secondary indexes are not the cost (a
prepared INSERT alone, in a loop: 0.11 ms with them, 0.10 ms with every one dropped).
End to end, the worker is the bound: each run's outcome still waits for its flush, and
the lag column shows the worker finishing after the enqueuer (claims committed without
the flush took one process end to end from 0.65x to 0.70x raw). Run to run these ratios
move with the machine: at 07:16 UTC on 2026-12-06 this command gave a single enqueue
1.62x and 1.69x and one process end to end 0.71x and 0.70x (raw's `.delay()` 0.53 ms);
at 09:16 (`--only raw,switchyard,start_run`), 1.23x and 1.33x, 0.77x and 0.67x (0.93
ms); at 11:05 (the run below), 1.19x and 1.29x, 0.74x and 0.79x (0.72 ms)."""
BREAKDOWN_TITLE = "Where an enqueue's time goes"
DURABLE_TITLE = "With fsync on (PostgreSQL's defaults)"
ASYNC_COMMIT_TITLE = "With fsync on, run records committed without the flush"
BREAKDOWN_INTRO = """
{calls:,} calls of each way in one process (the benchmark's own, on the same PostgreSQL
and Redis; no worker running), the ways taking turns call by call after 20 warm-up
calls. "Plain" rows are untouched calls; "bare" is `add.delay()` with Switchyard's two
publish handlers disconnected (Celery's own work in a Django process); the other rows
come from a second loop where each piece is wrapped with `time.perf_counter()` from
outside (signal receivers swapped for timed wrappers, kombu's `Producer.publish` and
`_prepare`, `apps.jobs.dispatch.clean_parameters`/`insert`/`send` and
`apps.jobs.sending.insert_run` patched in this process only, every other SQL statement
timed through `connection.execute_wrapper`; an autocommit statement's time includes
its commit). The floors are one round trip on
the same connections. Medians per call, so pieces do not add up exactly; nesting is
shown by indentation. The command above reproduces it (the
breakdown runs after the rounds, with `--calls`); add `--profile` for a cProfile of
`add.delay()`, printed only. Reading it (issue 15): Switchyard's share of an enqueue is
one autocommit INSERT of the run record, prepared once per connection, before the
publish; the run is written `queued`, so nothing is written after the publish
(`apps/jobs/sending.py`: only a publish that fails sets it back to `pending_send`).
Serialization is negligible, and the publish itself is Celery's own cost. Two costs
that Celery and kombu have only in a Django process are cut from every publish (and,
in a worker's main process, from every task): kombu's Redis channel built a new
redis-py client for each command (about 0.1 ms: a publish's LPUSH; a worker's
bookkeeping as it takes and acknowledges each message), now one per channel
(`apps/jobs/redis_clients.py`); and `.delay()` reads seven Celery settings, each asked
under several names of Django's settings object, where every name it lacks raised an
exception (15-25 us a setting; 5 us now that Celery reads them from a dict:
`project/celery_settings.py`). `start_run`'s validation checks the values with the
job form's fields as they are instead of deep-copying them for each call
(`catalog.clean_parameters`). `start_run`, `start_runs` and re-runs publish through
the job's send plan (`apps/jobs/publishing.py`, as beat does): Celery's
`create_task_message` and `send_task_message` with the job's options, settings and
route worked out once per process, instead of `apply_async` working them out for each
call (cProfile of 2,000 bulk publishes: Celery's settings lookups 14,001 -> 6,001,
the publish loop about a tenth shorter; what is left is Celery building each message,
its argument reprs included, and kombu sending it).
"""


def report(rounds: list[Round], args) -> str:
    durability = DURABLE if args.durable else FAST.format(durable=DURABLE_TITLE)
    if args.async_commit:
        durability = (
            ASYNC_COMMIT if args.durable else f"{durability} RUN_RECORDS_ASYNC_COMMIT=true."
        )
    lines = [
        INTRO.format(tasks=args.tasks, durability=durability, modes=modes(args)).strip(),
        "",
        f"Command: `{command_line('bench.enqueue')}`  ",
        measured(),
        "",
        "| variant | processes | round | call median | call p95 | tasks/s | lag |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rounds:
        number = sum(o.variant == r.variant and o.processes == r.processes
                     for o in rounds[: rounds.index(r) + 1])  # fmt: skip
        lines.append(
            f"| {r.variant} | {r.processes} | {number} | {ms(median(r.calls))} "
            f"| {ms(percentile(r.calls, 0.95))} | {r.rate:,.0f} | {r.lag:+.2f} s |"
        )
    lines += ["", *summary(rounds, args), "", *verdicts(rounds, args)]
    return "\n".join(lines)


def modes(args) -> str:
    ways = [f"from {count} processes at once ({args.tasks:,} in all)" if count > 1
            else "from one process" for count in args.processes]  # fmt: skip
    return " and ".join(ways)


def summary(rounds: list[Round], args) -> list[str]:
    lines = ["| variant | processes | `.delay()`/enqueue each | cost vs raw | end to end "
             "| vs raw |", "|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for count in args.processes:
        of = {v: [r for r in rounds if r.variant == v and r.processes == count]
              for v in args.only}  # fmt: skip
        call = {v: median(c for r in rs for c in [median(r.calls)]) for v, rs in of.items()}
        rate = {v: median(r.rate for r in rs) for v, rs in of.items()}
        for v in args.only:
            lines.append(
                f"| {LABELS[v]} | {count} | {ms(call[v])} | {ratio(call, v, 'raw')} "
                f"| {rate[v]:,.0f} tasks/s | {ratio(rate, v, 'raw')} |"
            )
    return lines


def verdicts(rounds: list[Round], args) -> list[str]:
    """The issue's goals for the single and the bulk enqueue, as lines bench.run collects."""
    one = [r for r in rounds if r.processes == 1]
    call = {v: median(median(r.calls) for r in one if r.variant == v) for v in args.only}
    rate = {v: median(r.rate for r in one if r.variant == v) for v in args.only}
    if "raw" not in args.only or not one:
        return []
    where = (f"{', fsync on' if args.durable else ''}"
             f"{', RUN_RECORDS_ASYNC_COMMIT=true' if args.async_commit else ''}"
             f"; `{command_line('bench.enqueue')}`")  # fmt: skip
    lines = []
    ours = [v for v in SINGLE if v in args.only]
    if ours:
        costs = [call[v] / call["raw"] for v in ours]
        speeds = [rate[v] / rate["raw"] for v in ours]
        lines += [
            f"**Goal (issue 15: an enqueue at most 1.5x raw Celery's `.delay()`)**: "
            f"{'met' if max(costs) <= 1.5 else 'not met'}: "
            + ", ".join(f"{LABELS[v]} {c:.2f}x" for v, c in zip(ours, costs, strict=True))
            + f" (medians, one process{where}).",
            "",
            f"**Goal (issue 15: one process end to end at least 0.7x raw)**: "
            f"{'met' if min(speeds) >= 0.7 else 'not met'}: "
            + ", ".join(f"{LABELS[v]} {x:.2f}x" for v, x in zip(ours, speeds, strict=True))
            + f" (medians{where}).",
        ]
    bulk = [v for v in BULK if v in args.only]
    if bulk:
        speed = {v: rate[v] / rate["raw"] for v in bulk}
        fast = [f"{LABELS[v]} {speed[v]:.2f}x" for v in bulk if speed[v] >= 1.0]
        slow = [f"{LABELS[v]} {speed[v]:.2f}x" for v in bulk if speed[v] < 1.0]
        verdict = f"met by {', '.join(fast)}" if fast else "not met"
        lines += [
            "" if lines else None,
            f"**Goal (issue 15: {args.tasks:,} runs started in bulk, end to end, at least "
            f"1.0x raw Celery's own `.delay()` loop, aiming at 2x)**: {verdict}"
            + (f"; below it: {', '.join(slow)}" if slow else "")
            + f" (medians, one process{where}).",
        ]
    return [line for line in lines if line is not None]


def ratio(values: dict[str, float], variant: str, reference: str) -> str:
    if reference not in values or not values[reference]:
        return "n/a"
    return f"{values[variant] / values[reference]:.2f}x"


ROWS = [
    ("floor select total", "floor: one PostgreSQL round trip (`SELECT 1`)", 0),
    ("floor ping total", "floor: one Redis round trip (PING)", 0),
    ("plain delay total", "`add.delay(1, 2)`, untouched", 0),
    ("bare delay total", "`add.delay(1, 2)`, publish handlers disconnected", 0),
    ("no-wait delay total", "`add.delay(1, 2)`, synchronous_commit off (no WAL flush wait)",
     0),
    ("timed delay before_task_publish handler", "before_task_publish: record_dispatch", 1),
    ("timed delay insert_run", "INSERT of the run record (prepared, autocommit)", 2),
    ("timed delay before_task_publish handler - timed delay insert_run",
     "the rest: building the Run and its column values", 2),
    ("timed delay kombu Producer.publish (incl. serialization, Redis)",
     "kombu Producer.publish (serialize + LPUSH)", 1),
    ("timed delay serialization (kombu _prepare)", "serialization (kombu `_prepare`)", 2),
    ("timed delay after_task_publish handler",
     "after_task_publish: record_sent (no statement: the run was written queued)", 1),
    ("timed delay SQL statements", "SQL statements per call (count)", 1),
    ("plain start_run total", "`start_run(add, {x, y})`, untouched", 0),
    ("timed start_run clean_parameters (validation)", "clean_parameters (validation)", 1),
    ("timed start_run insert(run) (Run.save)", "insert(run)", 1),
    ("timed start_run insert_run", "INSERT of the run record (prepared, autocommit)", 2),
    ("timed start_run send(run) (send plan)", "send(run): the job's send plan", 1),
    ("timed start_run kombu Producer.publish (incl. serialization, Redis)",
     "kombu Producer.publish (serialize + LPUSH)", 2),
    ("timed start_run after_task_publish handler", "after_task_publish: record_sent", 2),
    ("timed start_run SQL statements", "SQL statements per call (count)", 1),
]  # fmt: skip


def breakdown_table(pieces: dict[str, list[float]], args) -> list[str]:
    lines = [BREAKDOWN_INTRO.format(calls=args.calls).strip(),
             "", "| piece | ms per call (median) |", "|---|---:|"]  # fmt: skip
    for key, label, depth in ROWS:
        values = piece_values(pieces, key)
        if not values:
            shown = "not measured"
        elif key.endswith("statements"):
            shown = f"{median(values):g}"
        else:
            shown = ms(median(values))
        lines.append(f"| {'&nbsp;' * 4 * depth}{label} | {shown} |")
    plain, bare = pieces.get("plain delay total"), pieces.get("bare delay total")
    if plain and bare:
        share = ms(median(plain) - median(bare))
        lines += ["", f"Switchyard's share of an `add.delay()`: {share} per call (plain - bare)."]
    no_wait = pieces.get("no-wait delay total")
    if plain and no_wait:
        lines[-1] += (
            f" Waiting for the WAL flush of its commit: "
            f"{ms(median(plain) - median(no_wait))} (plain - synchronous_commit off)."
        )
    return lines


def piece_values(pieces: dict[str, list[float]], key: str) -> list[float]:
    """A piece's per-call values; for "a - b", the per-call differences (when both
    pieces were timed in every call)."""
    if " - " not in key:
        return pieces.get(key, [])
    whole, part = (pieces.get(k, []) for k in key.split(" - "))
    return [a - b for a, b in zip(whole, part, strict=True)] if len(whole) == len(part) else []


def ms(seconds: float) -> str:
    return f"{1000 * seconds:.2f} ms"


if __name__ == "__main__":
    main()
