"""The chaos suite's moving parts: a Redis it can stop, workers it can kill, a ledger of
executions, and the counts each scenario reports."""

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import redis
from django_celery_results.models import TaskResult
from kombu.exceptions import OperationalError

from apps.devstack import processes
from apps.jobs import sweeper
from apps.jobs.dispatch import record_and_send
from apps.jobs.models import FINISHED_STATES, Run, Source, State
from apps.jobs.tasks import sweep

RECORD = "tests.reliability.chaos_jobs.record"
RECORD_ONCE = "tests.reliability.chaos_jobs.record_once"
INCLUDE = "tests.reliability.chaos_jobs"


class RedisServer:
    """A redis-server with append-only persistence that can be stopped and started again
    on the same port and data directory, as a restarted container would be."""

    def __init__(self, data_dir: Path, port: int | None = None):
        self.data_dir = data_dir
        self.port = port or processes.free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        command = processes.redis_command(self.port, self.data_dir)
        self.process = processes.spawn(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        processes.wait_for_redis(self.url)

    def stop(self) -> None:
        """SIGTERM: Redis flushes its append-only file and exits."""
        if self.process is not None:
            processes.stop_all([self.process])
            self.process = None


class Ledger:
    """The file chaos_jobs append to: `start|done <task id> <pid>` per line."""

    def __init__(self, path: Path):
        self.path = path
        path.touch()

    def lines(self) -> list[tuple[str, str, int]]:
        rows = []
        for line in self.path.read_text().splitlines():
            event, task_id, pid = line.split()
            rows.append((event, task_id, int(pid)))
        return rows

    def counts(self, event: str) -> Counter:
        return Counter(task_id for kind, task_id, _ in self.lines() if kind == event)

    def pid_running(self, task_id: str) -> int | None:
        pids = [pid for kind, tid, pid in self.lines() if kind == "start" and tid == task_id]
        return pids[-1] if pids else None


class Fleet:
    """Worker processes started through the tests' `start_process`, by short name."""

    def __init__(self, start_process, env: dict[str, str], concurrency: int = 2):
        self._start = start_process
        self.env = env
        self.concurrency = concurrency
        self.workers: dict[str, subprocess.Popen] = {}
        self.kills: Counter = Counter()

    def start(self, name: str, *extra: str, concurrency: int | None = None) -> None:
        command = processes.worker_command(
            concurrency or self.concurrency, "-n", f"{name}@%h", "--include", INCLUDE,
            "--without-gossip", "--without-mingle", *extra,
        )  # fmt: skip
        self.workers[name] = self._start(command, **self.env)

    def nodename(self, name: str) -> str:
        return f"{name}@{socket.gethostname()}"

    def is_ready(self, name: str) -> bool:
        log = Path(self.workers[name].log_path).read_text(errors="replace")
        return f"{self.nodename(name)} ready." in log

    def wait_ready(self, *names: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        for name in names or tuple(self.workers):
            while not self.is_ready(name):
                if self.workers[name].poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"worker {name} did not start: see {self.log(name)}")
                time.sleep(0.1)

    def log(self, name: str) -> str:
        return self.workers[name].log_path

    def kill(self, name: str) -> None:
        """SIGKILL the worker and its pool, as when its machine or container dies."""
        worker = self.workers[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
        self.kills["worker"] += 1

    def restart(self, name: str) -> None:
        self.kill(name)
        self.start(name)

    def kill_child(self, name: str, pid: int | None = None) -> bool:
        """SIGKILL one pool process (the kernel's OOM killer does this)."""
        children = child_pids(self.workers[name].pid)
        target = pid if pid in children else (children[0] if children else None)
        if target is None:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(target, signal.SIGKILL)
        self.kills["pool process"] += 1
        return True

    def owner_of(self, pid: int) -> str | None:
        for name, worker in self.workers.items():
            if worker.poll() is None and pid in child_pids(worker.pid):
                return name
        return None


def child_pids(parent: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            # "pid (comm) state ppid ...": comm may hold spaces; split after its ')'.
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            if ppid == parent:
                found.append(int(stat.parent.name))
    return sorted(found)


@dataclass
class Counts:
    """What a scenario saw; `lost` and `duplicated` are what the suite fails on."""

    scenario: str
    sent: int = 0
    executed: int | None = 0  # None: not measured (beat's messages are not run)
    succeeded: int = 0
    lost: int = 0
    duplicated: int = 0
    extra: dict = field(default_factory=dict)

    def line(self) -> str:
        executed = "n/a" if self.executed is None else self.executed
        core = (f"sent={self.sent} executed={executed} succeeded={self.succeeded} "
                f"lost={self.lost} duplicated={self.duplicated}")  # fmt: skip
        more = " ".join(f"{key}={value}" for key, value in self.extra.items())
        return f"{self.scenario}: {core} {more}".rstrip()


REPORTS: list[Counts] = []


def report(counts: Counts, record_property) -> None:
    """Print the counts now and again in pytest's terminal summary (tests/reliability)."""
    print(f"\nCHAOS {counts.line()}", flush=True)
    REPORTS.append(counts)
    record_property("chaos", counts.line())


# Sending, sweeping, counting -------------------------------------------------------------


def send(job_name: str, ledger: Ledger, seconds: float) -> Run:
    """Record and send one chaos job the way start_run does, after validation."""
    parameters = {"ledger": str(ledger.path), "seconds": seconds}
    return record_and_send(job_name, parameters, source=Source.SHELL, label="chaos")


def unfinished(task_ids: list[str]) -> int:
    return Run.objects.filter(task_id__in=task_ids).exclude(state__in=FINISHED_STATES).count()


def sweep_until_finished(task_ids: list[str], timeout: float) -> None:
    """What the `sweep` schedule does every 30 s, more often, until every run ended: here
    every second, and every 5 s in a worker too, where the chaos jobs are known (only a
    process that knows a job acknowledges it late can tell a lost message is safe to
    send again)."""
    deadline = time.monotonic() + timeout
    next_sweep = 0.0
    while unfinished(task_ids) and time.monotonic() < deadline:
        sweeper.send_pending()
        sweeper.reconcile()
        if time.monotonic() > next_sweep:
            with contextlib.suppress(OperationalError):
                sweep.delay()
            next_sweep = time.monotonic() + 5
        time.sleep(1)


def settle(predicate, timeout: float, interval: float = 1.0) -> bool:
    """Poll like wait_for, but return False at the deadline: the counts still get reported."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


def count_runs(scenario: str, runs: list[Run], ledger: Ledger) -> Counts:
    """Succeeded: the run record says so and Celery stored SUCCESS; executed: job bodies
    that ran to their end; duplicated: ends beyond the first."""
    ids = [run.task_id for run in runs]
    records = Run.objects.filter(task_id__in=ids)
    succeeded = set(records.filter(state=State.SUCCEEDED).values_list("task_id", flat=True))
    stored = TaskResult.objects.filter(task_id__in=ids, status="SUCCESS")
    both = succeeded & set(stored.values_list("task_id", flat=True))
    done, starts = ledger.counts("done"), ledger.counts("start")
    return Counts(
        scenario,
        sent=len(ids),
        executed=sum(done[task_id] for task_id in ids),
        succeeded=len(both),
        lost=len(set(ids) - both),
        duplicated=sum(max(0, done[task_id] - 1) for task_id in ids),
        extra={
            "interrupted": sum(starts[t] for t in ids) - sum(done[t] for t in ids),
            "redelivered": records.filter(deliveries__gt=1).count(),
        },
    )


def describe(runs: list[Run], ledger: Ledger, broker_url: str | None = None) -> str:
    """The runs that did not end succeeded, for a failure message, with where each one's
    message is in the broker (a queue, the unacknowledged set, nowhere) if it is given."""
    ids = [run.task_id for run in runs]
    results = dict(TaskResult.objects.filter(task_id__in=ids).values_list("task_id", "status"))
    lines = ledger.lines()
    failed = [
        run
        for run in Run.objects.filter(task_id__in=ids)
        if run.state != State.SUCCEEDED or results.get(run.task_id) != "SUCCESS"
    ]
    found = whereabouts(broker_url, {run.task_id for run in failed}) if broker_url else {}
    text = "\n".join(
        f"{run.task_id} {run.state} deliveries={run.deliveries} worker={run.worker} "
        f"result={results.get(run.task_id)} note={run.note!r} "
        f"ledger={[(e, pid) for e, t, pid in lines if t == run.task_id]} "
        f"broker={found.get(run.task_id, 'nowhere')}"
        for run in failed
    )
    return text + (f"\nbroker: {broker_state(broker_url)}" if broker_url else "")


def whereabouts(broker_url: str, task_ids: set[str]) -> dict[str, str]:
    """Which Redis key (a queue list, or kombu's `unacked` hash) holds each task's message."""
    client = redis.Redis.from_url(broker_url)
    places = {}
    for key in client.scan_iter(_type="list"):
        for raw in client.lrange(key, 0, -1):
            places.update(dict.fromkeys(_ids_in(raw, task_ids), f"queue {key!r}"))
    for raw in client.hvals("unacked"):
        places.update(dict.fromkeys(_ids_in(raw, task_ids), "unacked"))
    return places


def _ids_in(raw: bytes, task_ids: set[str]) -> list[str]:
    text = raw.decode(errors="replace")
    return [task_id for task_id in task_ids if task_id in text]


def broker_state(broker_url: str) -> str:
    client = redis.Redis.from_url(broker_url)
    return (f"unacked={client.hlen('unacked')} "
            f"unacked_mutex ttl={client.ttl('unacked_mutex')}s")  # fmt: skip


def send_many(ledger_path: str, count: int, seconds: float) -> None:
    """Run by `manage.py shell -c` in a process whose database is not the test database:
    send `count` chaos jobs and print their task ids, one a line."""
    ledger = Ledger(Path(ledger_path))
    for _ in range(count):
        print(send(RECORD, ledger, seconds).task_id, flush=True)


def send_many_command(ledger: Ledger, count: int, seconds: float) -> list[str]:
    code = (f"from tests.reliability.stack import send_many; "
            f"send_many({str(ledger.path)!r}, {count}, {seconds})")  # fmt: skip
    return [processes.PYTHON, "manage.py", "shell", "-v", "0", "-c", code]


def send_paced(ledger_path: str, count: int, per_second: float, sweep_for: float) -> None:
    """Run by `manage.py shell -c` in a process with its own broker settings: send `count`
    chaos jobs at `per_second`, printing their task ids, then sweep runs left unsent (a
    publish that failed while the broker failed over) for up to `sweep_for` seconds."""
    ledger = Ledger(Path(ledger_path))
    ids = []
    for _ in range(count):
        ids.append(send(RECORD, ledger, 0.1).task_id)
        print(ids[-1], flush=True)
        time.sleep(1 / per_second)
    deadline = time.monotonic() + sweep_for
    while time.monotonic() < deadline:
        if not Run.objects.filter(task_id__in=ids, state=State.PENDING_SEND).exists():
            return
        sweeper.send_pending(older_than=timedelta(seconds=1))
        time.sleep(1)
