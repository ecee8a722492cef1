"""Mixed load: the whole stack at work, as on a busy day, step by step up to the target.

    .venv/bin/python -m bench.mixed [--minutes 10] [--rows 1000000] [--schedules 10000]
                                    [--api-rate 200] [--people 20] [--web-workers 1]
                                    [--quick] [--no-write]

Starts its own PostgreSQL and Redis (bench.common.private_stack), loads N results and N
runs (bench.admin_pages.load: 30 days of history) and S interval schedules (every 60 s,
due times spread evenly over the minute: bench.beat_scale.enable_schedules), then the
processes as docker-compose.yml runs them: gunicorn (`project.wsgi:application`, one
threaded worker with project/gunicorn.py's settings unless --web-workers),
`celery worker --concurrency=2` and `celery beat` (the project's SwitchyardScheduler).
Two load processes (no Django in them) then run for --minutes:

- API clients: `POST /api/jobs/apps.demo.tasks.add/runs` with a bearer token, open loop
  at the step's rate (a request is due at its time whether or not the last one answered;
  32 threads);
- people: --people threads, each a logged-in superuser paging /runs/ (and its next page),
  the dashboard / and the results admin (default, a random page, a filter, a search),
  with 2-4 s between pages.

The load rises in steps (a share of the API rate and of the people; beat's schedules
fire at full rate throughout): full mode 25 %, 50 %, 75 % and 100 % for a minute each,
then 100 % to the end; --quick 50 % and 100 %, 40 s each, 100,000 rows. Measured: each
API call's time, each page's time (client side: what a person waits), each schedule's
lateness (run recorded minus due), jobs queued and finished per step, the queue's length,
CPU per process group per step, and the RSS of every process every few seconds. Written
to docs/performance.md ("Mixed load").
"""

import argparse
import contextlib
import http.client
import json
import multiprocessing
import queue
import random
import re
import secrets
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import redis
import requests

from apps.devstack import processes

from .common import (
    CLOCK_TICKS,
    Stack,
    command_line,
    descendants,
    machine,
    measured,
    percentile,
    postgres_server_pid,
    private_stack,
    redis_server_pid,
    rss_mib,
    tree_cpu_seconds,
    write_section,
)

HEADING = "Mixed load"
JOB = "apps.demo.tasks.add"
RESULTS = "/admin/django_celery_results/taskresult/"
API_THREADS = 32
NOT_SENT = -1  # status of an API call still unsent when the load ended
THINK = (2.0, 4.0)  # seconds a person looks at a page
GOALS = {"lateness_p99": 1.0, "page_p95": 0.300, "api_p95": 0.050}


@dataclass
class Step:
    share: float  # of the target API rate and people
    start: float  # seconds after t0
    end: float


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    with private_stack() as stack, tempfile.TemporaryDirectory(prefix="bench-mixed-") as tmp:
        loaded = prepare(args)
        result = run(stack, args, Path(tmp), loaded)
    text = report(result, args)
    print(text)
    print(slowest_views(result))
    if not args.no_write:
        write_section(HEADING, text)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="of load, all steps")
    parser.add_argument("--rows", type=int, default=1_000_000, help="results and runs loaded")
    parser.add_argument("--schedules", type=int, default=10_000, help="each every minute")
    parser.add_argument("--api-rate", type=float, default=200.0, help="API enqueues a second")
    parser.add_argument("--people", type=int, default=20, help="people paging the site")
    parser.add_argument(
        "--web-workers", type=int, default=0, help="gunicorn processes (default: compose's, one)"
    )
    parser.add_argument(
        "--steps",
        type=lambda s: [float(x) for x in s.split(",")],
        help="shares of the target load, a minute each, the last to the end",
    )
    parser.add_argument(
        "--quick", action="store_true", help="100,000 rows, 50 %% then 100 %%, 80 s"
    )
    parser.add_argument("--no-write", action="store_true", help="do not touch the docs")
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.minutes = min(args.rows, 100_000), min(args.minutes, 80 / 60)
        args.steps = args.steps or [0.5, 1.0]
    args.steps = args.steps or [0.25, 0.5, 0.75, 1.0]
    return args


def steps_of(args) -> list[Step]:
    """Equal steps when they fit in a minute each or less; else a minute each and the
    last one to the end."""
    total = args.minutes * 60
    each = min(60.0, total / len(args.steps))
    steps = [Step(share, n * each, (n + 1) * each) for n, share in enumerate(args.steps)]
    steps[-1].end = total
    return steps


# Data -----------------------------------------------------------------------------------


def prepare(args) -> int:
    """Load the tables; return the highest run id loaded (later runs are the load's)."""
    from apps.jobs.models import Run

    from .admin_pages import load
    from .beat_scale import enable_schedules

    started = time.monotonic()
    load(args.rows)
    enable_schedules(args.schedules)
    print(
        f"--- loaded {args.rows:,} rows and {args.schedules:,} schedules in "
        f"{time.monotonic() - started:.0f} s",
        flush=True,
    )
    return Run.objects.order_by("-id").values_list("id", flat=True).first() or 0


def spread_schedules(count: int, first_due: datetime) -> None:
    """Schedule i first due at first_due + i * 60 s / count (as bench.beat_scale)."""
    from django.db import connection
    from django_celery_beat.models import PeriodicTask

    from .beat_scale import PERIOD, PREFIX

    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {PeriodicTask._meta.db_table} SET total_run_count = 0, last_run_at = "
            "%s + CAST(substr(name, %s) AS integer) * %s * interval '1 second' "
            "WHERE name LIKE %s AND enabled",
            [first_due - timedelta(seconds=PERIOD), len(PREFIX) + 1, PERIOD / count, PREFIX + "%"],
        )


def sessions(people: int, secret_key: str) -> tuple[str, list[str], str]:
    """The session cookie's name, one logged-in session per person (the superuser
    "bench" that bench.admin_pages.load made; signed with the web server's key), and an
    API token of that user."""
    from django.conf import settings
    from django.test.utils import override_settings

    with override_settings(SECRET_KEY=secret_key):
        return _sessions(people, settings)


def _sessions(people: int, settings) -> tuple[str, list[str], str]:
    from django.contrib.auth import (
        BACKEND_SESSION_KEY,
        HASH_SESSION_KEY,
        SESSION_KEY,
        get_user_model,
    )
    from django.contrib.sessions.backends.db import SessionStore

    from apps.api.models import ApiToken

    user = get_user_model().objects.get(username="bench")
    keys = []
    for _ in range(people):
        store = SessionStore()
        store.update(
            {
                SESSION_KEY: str(user.pk),
                HASH_SESSION_KEY: user.get_session_auth_hash(),
                BACKEND_SESSION_KEY: settings.AUTHENTICATION_BACKENDS[0],
            }
        )
        store.create()
        keys.append(store.session_key)
    return settings.SESSION_COOKIE_NAME, keys, ApiToken.issue(user, "bench-mixed")[1]


# The stack --------------------------------------------------------------------------------


@dataclass
class Processes:
    web: subprocess.Popen
    worker: subprocess.Popen
    beat: subprocess.Popen
    base_url: str

    def all(self) -> list[subprocess.Popen]:
        return [self.beat, self.web, self.worker]


def start_processes(stack: Stack, args, logs: Path) -> Processes:
    """gunicorn, a worker and beat, as docker-compose.yml runs them."""
    port = processes.free_port()
    env = stack.env(
        SECURE_SSL_REDIRECT="false",
        SECURE_COOKIES="false",
        DEBUG="false",
        ALLOWED_HOSTS="127.0.0.1",
        SECRET_KEY=SECRET_KEY,
    )
    workers = ["--workers", str(args.web_workers)] if args.web_workers else []
    web_command = processes.gunicorn_command(f"127.0.0.1:{port}", *workers)

    def spawn(name, command):
        with open(logs / f"{name}.log", "wb") as log:
            return processes.spawn(command, env=env, stdout=log, stderr=subprocess.STDOUT)

    return Processes(
        spawn("web", web_command),
        spawn("worker", processes.worker_command(2)),
        spawn("beat", processes.beat_command()),
        f"http://127.0.0.1:{port}",
    )


def wait_until_ready(procs: Processes, logs: Path) -> None:
    from project import celery_app

    from .latency import wait_for_http

    wait_for_http(f"{procs.base_url}/healthz", procs.web, timeout=120)
    deadline = time.monotonic() + 120
    while not celery_app.control.ping(timeout=0.5):
        if time.monotonic() > deadline or procs.worker.poll() is not None:
            raise RuntimeError("worker did not start:\n" + tail(logs / "worker.log"))
    if procs.beat.poll() is not None:
        raise RuntimeError("beat exited:\n" + tail(logs / "beat.log"))


def check_logged_in(base_url: str, cookie: str, key: str, token: str) -> None:
    """A person's session sees the results admin and the token starts a run (no
    redirect to the login page: those would be timed instead of the pages)."""
    people = requests.get(f"{base_url}{RESULTS}", cookies={cookie: key}, timeout=60,
                          allow_redirects=False)  # fmt: skip
    api = requests.get(f"{base_url}/api/jobs", timeout=60,
                       headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    if (people.status_code, api.status_code) != (200, 200):
        raise RuntimeError(f"not logged in: results admin {people.status_code}, "
                           f"API {api.status_code}")  # fmt: skip


def tail(path: Path, chars: int = 3000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else ""


# Load: run in processes of their own (spawned: no Django, no inherited connections) -----


def api_load(base_url: str, token: str, plan: "Plan", t0: float, out: str) -> None:
    """POST a run at each due time of the plan [(start, end, rate)], open loop; write
    [due, start, end, status] per call to `out` as JSON."""
    due_times: queue.Queue = queue.Queue()
    records: list[list] = []

    stop = t0 + plan[-1][1]

    def call() -> None:
        # http.client, one kept-alive connection a thread: about a third of requests'
        # CPU a call (0.25 against 0.77 ms, measured here), CPU this process takes from
        # the 2 cores the stack runs on.
        address = urlsplit(base_url)
        connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        path, body = f"/api/jobs/{JOB}/runs", json.dumps({"parameters": {"x": 1, "y": 2}})
        while (due := due_times.get()) is not None:
            if time.time() >= stop:  # still waiting for a thread when the load ended
                records.append([due, None, None, NOT_SENT])
                continue
            began = time.time()
            status = post(connection, path, body, headers)
            records.append([due, began, time.time(), status])

    threads = [threading.Thread(target=call, daemon=True) for _ in range(API_THREADS)]
    for thread in threads:
        thread.start()
    for start, end, rate in plan:
        count = int((end - start) * rate)
        for n in range(count):
            due = t0 + start + n / rate
            time.sleep(max(0.0, due - time.time()))
            due_times.put(due)
    for _ in threads:
        due_times.put(None)
    for thread in threads:
        thread.join(max(0.0, stop + 40 - time.time()))
    Path(out).write_text(json.dumps(records))


def post(connection: http.client.HTTPConnection, path: str, body: str, headers: dict) -> int:
    """The answer's status, 0 for none. A kept-alive connection the server closed while
    idle (gunicorn's keepalive) is opened again and the call made once more, as a
    browser or requests would: the server never saw the first try."""
    for attempt in (1, 2):
        try:
            connection.request("POST", path, body, headers)
            response = connection.getresponse()
            response.read()
            return response.status
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            connection.close()
            if attempt == 2:
                return 0
        except (OSError, http.client.HTTPException):
            connection.close()  # opened again by the next call
            return 0
    return 0


Plan = list[tuple[float, float, float]]  # (start, end, rate or share) per step


def people_load(
    base_url: str, cookie: str, keys: list[str], plan: Plan, t0: float, pages: int, out: str
) -> None:
    """Person k (a session of `keys`) pages the site while k < share * len(keys) in the
    plan's step; write [page, start, end, status] per page view to `out` as JSON."""
    records: list[list] = []
    stop = t0 + plan[-1][1]

    def active(k: int, now: float) -> bool:
        return any(t0 + a <= now < t0 + b and k < round(share * len(keys)) for a, b, share in plan)

    def person(k: int) -> None:
        session = requests.Session()
        session.cookies.set(cookie, keys[k])
        chooser = random.Random(k)
        visits = tour(session, base_url, chooser, pages)
        time.sleep(max(0.0, t0 - time.time()) + chooser.uniform(0, THINK[1]))
        while time.time() < stop:
            if not active(k, time.time()):
                time.sleep(0.5)
                continue
            name, url = next(visits)
            began = time.time()
            try:
                response = session.get(url, timeout=30, allow_redirects=False)
                status, body = response.status_code, response.text
            except requests.RequestException:
                status, body = 0, ""
            records.append([name, began, time.time(), status])
            if name == "/runs/":
                visits.send(body)
            time.sleep(chooser.uniform(*THINK))

    threads = [threading.Thread(target=person, args=(k,), daemon=True) for k in range(len(keys))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, stop + 40 - time.time()))
    Path(out).write_text(json.dumps(records))


OLDER = re.compile(r'class="older" href="([^"]+)"')


def tour(session, base_url: str, chooser: random.Random, pages: int):
    """A person's pages, round and round: /runs/ and its next page, the dashboard, the
    results admin (default, a random page, a filter, a search). After /runs/, send()
    its HTML so that the next page follows its "Older" link."""
    while True:
        body = yield "/runs/", f"{base_url}/runs/"
        yield None  # the send() above returns here
        older = OLDER.search(body or "")
        if older:
            yield "/runs/ next page", base_url + older.group(1).replace("&amp;", "&")
        yield "dashboard /", f"{base_url}/"
        yield "results: default", f"{base_url}{RESULTS}"
        yield "results: a random page", f"{base_url}{RESULTS}?p={chooser.randint(2, pages)}"
        yield "results: state filter", f"{base_url}{RESULTS}?status=FAILURE"
        yield "results: search task name", f"{base_url}{RESULTS}?q=apps.demo.tasks.mu"


# Sampling -----------------------------------------------------------------------------------


@dataclass
class Samples:
    times: list[float] = field(default_factory=list)
    rss: dict[str, list[float]] = field(default_factory=dict)  # name -> MiB per sample
    queue: list[int] = field(default_factory=list)  # messages waiting in the default queue
    cpu: list[dict[str, float]] = field(default_factory=list)  # CPU seconds per group


def groups(procs: Processes, clients: list) -> dict[str, list[int]]:
    """Process groups whose CPU is counted: each a root pid (its tree)."""
    return {
        "web (gunicorn)": [procs.web.pid],
        "worker (main + pool)": [procs.worker.pid],
        "beat": [procs.beat.pid],
        "PostgreSQL": [postgres_server_pid()],
        "Redis": [REDIS_PID],
        "load (API + people)": [c.pid for c in clients],
    }


REDIS_PID = 0
SECRET_KEY = secrets.token_urlsafe(50)  # the web server's; the people's sessions signed with it


def each_process(procs: Processes) -> dict[str, int]:
    """Every process of the stack by a stable name: its RSS is sampled."""
    named = {
        "web master": procs.web.pid,
        "worker main": procs.worker.pid,
        "beat": procs.beat.pid,
        "Redis": REDIS_PID,
    }
    for n, pid in enumerate(sorted(descendants(procs.web.pid)), 1):
        named[f"web worker {n}"] = pid
    for n, pid in enumerate(sorted(descendants(procs.worker.pid)), 1):
        named[f"worker pool {n}"] = pid
    return named


def pss_mib(pids: list[int]) -> float:
    """Proportional set size summed (shared memory split between its users)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
    return total / 1024


class Sampler:
    def __init__(self, procs: Processes, clients: list, redis_url: str, every: float):
        self.samples, self.every = Samples(), every
        self.groups, self.named = groups(procs, clients), each_process(procs)
        self.postgres = self.groups["PostgreSQL"][0]
        self.broker = redis.Redis.from_url(redis_url)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self) -> None:
        while True:
            self.sample()
            if self.stopping.wait(self.every):
                return

    def sample(self) -> None:
        s = self.samples
        s.times.append(time.time())
        for name, pid in self.named.items():
            with contextlib.suppress(OSError):
                s.rss.setdefault(name, []).append(rss_mib(pid))
        pg = [self.postgres, *descendants(self.postgres)]
        s.rss.setdefault("PostgreSQL (all processes, PSS)", []).append(pss_mib(pg))
        s.queue.append(int(self.broker.llen("celery")))
        s.cpu.append(
            {
                name: sum(tree_cpu_seconds(pid) for pid in pids)
                for name, pids in self.groups.items()
            }
        )

    def stop(self) -> Samples:
        self.stopping.set()
        self.thread.join()
        self.sample()
        return self.samples


def machine_cpu_seconds() -> float:
    """Busy CPU time of the whole machine (every core), from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / CLOCK_TICKS


# One run ----------------------------------------------------------------------------------


@dataclass
class Result:
    steps: list[Step]
    t0: float
    api: list[list]  # [due, start, end, status]
    pages: list[list]  # [page, start, end, status]
    lags: list[tuple[float, float]]  # (due, lateness) of every schedule run due
    unsent: int
    runs: list[tuple[float, float | None]]  # (queued, finished) of the load's runs
    samples: Samples
    machine_cpu: list[float]  # busy CPU seconds of the machine at each step boundary
    description: str  # the machine, its load and its speed before the stack started


def run(stack: Stack, args, tmp: Path, loaded_up_to: int) -> Result:
    global REDIS_PID
    from .beat_scale import first_due_times

    REDIS_PID = redis_server_pid(stack.redis_url)
    steps = steps_of(args)
    lead = 40 + args.schedules / 2500  # processes up (on a busy machine), beat loaded
    t0 = time.time() + lead
    first_due = datetime.fromtimestamp(t0, UTC)
    spread_schedules(args.schedules, first_due)
    cookie, keys, token = sessions(args.people, SECRET_KEY)
    description = machine()  # before the stack's processes load the machine
    procs = start_processes(stack, args, tmp)
    clients: list = []
    try:
        wait_until_ready(procs, tmp)
        check_logged_in(procs.base_url, cookie, keys[0], token)
        if time.time() > t0 - 2:
            print("!!! the stack took longer to start than planned: early runs are late")
        clients = start_load(procs.base_url, cookie, keys, token, steps, args, t0, tmp)
        sampler = Sampler(procs, clients, stack.redis_url, every=5 if not args.quick else 2)
        machine_cpu = [sleep_then(t0 + step.start, machine_cpu_seconds) for step in steps]
        machine_cpu.append(sleep_then(t0 + steps[-1].end, machine_cpu_seconds))
        samples = sampler.stop()  # a last sample now, while the load processes live
        for client in clients:
            client.join(max(0.0, t0 + steps[-1].end + 60 - time.time()))
    finally:
        for client in clients:
            if client.is_alive():
                client.terminate()
        processes.stop_all(procs.all())
    end = t0 + steps[-1].end
    lags, unsent = schedule_lags(first_due_times(args.schedules, first_due), end)
    api, pages = read_records(tmp / "api.json"), read_records(tmp / "people.json")
    runs = load_runs(loaded_up_to)
    return Result(steps, t0, api, pages, lags, unsent, runs, samples, machine_cpu, description)


def read_records(path: Path) -> list:
    if not path.exists():
        print(f"!!! {path.name}: the load process wrote no records")
        return []
    return json.loads(path.read_text())


def sleep_then(moment: float, then):
    time.sleep(max(0.0, moment - time.time()))
    return then()


def start_load(base_url, cookie, keys, token, steps, args, t0, tmp: Path) -> list:
    context = multiprocessing.get_context("spawn")
    api_plan = [(s.start, s.end, s.share * args.api_rate) for s in steps]
    people_plan = [(s.start, s.end, s.share) for s in steps]
    pages = min(500, max(2, args.rows // 200))
    clients = [
        context.Process(
            target=api_load, args=(base_url, token, api_plan, t0, str(tmp / "api.json"))
        ),
        context.Process(
            target=people_load,
            args=(base_url, cookie, keys, people_plan, t0, pages, str(tmp / "people.json")),
        ),
    ]
    for client in clients:
        client.start()
    return clients


def schedule_lags(first_due: dict[str, datetime], end: float) -> tuple[list, int]:
    """(due, lateness) of every schedule run due before `end`; and how many of those
    were never sent (counted with their lateness at `end`, a lower bound)."""
    from apps.jobs.models import Run

    from .beat_scale import PERIOD, PREFIX

    sent: dict[str, list[datetime]] = {}
    rows = Run.objects.filter(schedule_name__startswith=PREFIX)
    for name, queued_at in rows.values_list("schedule_name", "queued_at").iterator(5000):
        sent.setdefault(name, []).append(queued_at)
    period, stop = timedelta(seconds=PERIOD), datetime.fromtimestamp(end, UTC)
    lags, unsent = [], 0
    for name, due in first_due.items():
        for queued_at in sorted(sent.get(name, ())):
            lag = queued_at - due
            if due < stop:
                lags.append((due.timestamp(), lag.total_seconds()))
            due = (queued_at if lag >= period else due) + period  # as bench.beat_scale
        if due < stop:
            lags.append((due.timestamp(), (stop - due).total_seconds()))
            unsent += 1
    return lags, unsent


def load_runs(loaded_up_to: int) -> list[tuple[float, float | None]]:
    from apps.jobs.models import Run

    rows = Run.objects.filter(id__gt=loaded_up_to).values_list("queued_at", "finished_at")
    return [(q.timestamp(), f.timestamp() if f else None) for q, f in rows.iterator(5000)]


# Report -------------------------------------------------------------------------------------

INTRO = """
Everything at once on one machine, as on a busy day: {schedules:,} schedules firing every
minute through the real beat (`celery beat` with the project's `SwitchyardScheduler`),
API clients starting `apps.demo.tasks.add` runs at up to {rate:g} a second
(`POST /api/jobs/<job>/runs`, bearer token, open loop: each call is due at its time
whether the last one answered or not), and up to {people} people paging `/runs/` (and its
next page), the dashboard `/` and the results admin (default, a random page, the
failures filter, a search), 2-4 s between pages, over {rows:,} results and {rows:,} runs
(30 days of history, `bench.admin_pages`' tables). The processes are docker-compose.yml's:
gunicorn `project.wsgi:application` ({web}), one `celery worker --concurrency=2`
(prefork) that runs every job, the API's and the schedules', and one `celery beat`;
PostgreSQL 15 (fsync off) and Redis 6.2 (AOF on), private to the run. The load clients
(no Django) run in two processes of their own on the same 2 cores.

The load rises in steps (share of the API rate and of the people; the schedules fire at
full rate from the start), then holds at the target to the end. Per step: API calls
offered and answered (201) a second; "behind" = calls due by the step's end that the 32
client threads had not yet made (their backlog: the web server answers too slowly);
errors (any other answer); the time of the calls made in the step (p50/p95, from the
call to its answer, queueing in gunicorn's backlog included); jobs queued (API and
schedules) and finished a second, and messages waiting in the queue at the step's end;
schedule lateness (run recorded by beat minus due time) p99 of the runs due in the step;
the slowest page's p95; then CPU of each part as a share of one core (the machine has 2).

What the target asks of 2 cores, by the other benchmarks here (each measured alone): a
job costs the worker about 3.3 ms of CPU and PostgreSQL about 0.9 ms (one worker with 2
processes stores about 320 results a second with the machine to itself: "Result storage
throughput"); beat about 0.5 ms per run sent ("Beat at scale"); an API call about 6-8 ms
of the web process's time, much of it waiting on PostgreSQL and Redis ("Trigger
latency"), so one gunicorn process answers at most about 120-160 calls a second with
nothing else to do (its threads overlap waits, not CPU); a page 40-120 ms ("Pages at
1,000,000 rows"). 167 schedule runs and 200 API runs a second are 367 jobs a second:
about 1.5 cores for the worker and PostgreSQL alone, and more than a second of the
single web worker's time every second. By those figures (most measured before the costs
issue 15 cut) the target would not fit in 2 cores; measured, it fitted, barely, on
one machine and does not on another (the reading below); the tables show what fell
behind first and at what rate. Beat's sends
are cheap and it runs alone, so its lateness holds even when the rest is saturated.
`--web-workers N` runs gunicorn with N processes (what `WEB_CONCURRENCY` in `.env` does
for docker-compose): they get no more CPU than the machine has.

The goal at the target (lateness, pages and API together) was met once, at 04:36 UTC on
2026-12-06, on 2 x Intel Xeon: API p50 3 ms and p95 34 ms, every page's p95 under 240
ms, the worker keeping up (367 jobs a second), the machine 155 % busy. It has not been
met since. At 09:13 that day the machine restarted on 2 x AMD EPYC (each report's
Machine line names the CPU), where the same code costs more CPU, and how much more
changes by the hour (94-152 % busy at the first step, against 75-98 % on the Intel
machine): at the target the 2 cores are saturated (191-198 % busy), the API answers late
or not at all, the pages slow down and the worker falls behind. What saturates is CPU,
shared by every part: no part is the bottleneck alone (in the CPU table the web, the
worker and PostgreSQL grow together, and under saturation each gets its share: the
worker 62-63 % of a core in every saturated run). In every run beat sent each schedule's
run within 0.27 s (p99), and no web, worker or beat process grew by more than 4.1 MiB
from 2 minutes in.

Every full run of the day (`.venv/bin/python -m bench.mixed`, an idle machine each time,
compose's web service: one gthread process with 4 threads). "Busy" is the machine's CPU
of 200 %, at the first step (25 %: 50 API calls a second, 5 people, the schedules at
full rate) and at the target; then the target's API calls answered a second (of 200),
API p95, the slowest page's p95, and jobs finished a second of those queued; "-" where
the run's report was not kept:

| run (UTC) | CPU | busy at 25 % | at target | API answered/s | API p95 | slowest page | done/s |
|---|---|---:|---:|---:|---:|---:|---:|
| 02:23 | Intel | - | 186 % | 200 | 147 ms | 387 ms | - |
| 04:18 | Intel | 75 % | 163 % | 200 | 47 ms | 318 ms | - |
| 04:36 | Intel | 75 % | 155 % | 200 | 34 ms | under 240 ms | 367 of 367 |
| 04:56 | Intel | 86 % | 183 % | 200 | 94 ms | 288 ms | - |
| 05:10 | Intel | 95 % | 189 % | 200 | 168 ms | 393 ms | - |
| 06:35 | Intel | - | 173 % | 200 | 79 ms | under 300 ms | - |
| 07:13 | Intel | 98 % | 186 % | 200 | 134 ms | 359 ms | 358 of 367 |
| 08:36 | Intel | 87 % | 174 % | 200 | 79 ms | 287 ms | 367 of 367 |
| 12:01 | AMD | 152 % | 198 % | 135 | 431 ms | 761 ms | 207 of 302 |
| 12:22 | AMD | 131 % | 198 % | 158 | 371 ms | 626 ms | 226 of 325 |
| 12:43 | AMD | 138 % | 197 % | 165 | 361 ms | 655 ms | 243 of 332 |
| 13:09 | AMD | 106 % | 193 % | 200 | 204 ms | 408 ms | 320 of 367 |
| 13:22 | AMD | 94 % | 197 % | 199 | 271 ms | 497 ms | 308 of 366 |
| 14:27 | AMD | 111 % | 197 % | 161 | 367 ms | 673 ms | 251 of 328 |
| 17:07 | AMD | 107 % | 191 % | 200 | 215 ms | 391 ms | 341 of 367 |

The tables below are the 08:36 run's. What changed between runs:

- Before 04:18: an API token is read with one SQL statement instead of an ORM query
  built per call (0.62 to 0.07 ms of CPU); the dashboard's charts are worked out again
  by a thread while pages show the kept ones; the API clients use http.client (their
  CPU from 19 % of a core to 6 %).
- Before 04:36: the broker snapshot too is taken by a thread while pages show the kept
  one (apps/jobs/revalidating.py).
- 04:56 and 05:10 added only beat's smaller send plans, on a machine that had grown
  slower: the first step took 86 % and 95 % where it had taken 75 %, in every process
  alike (PostgreSQL and the worker included, which nothing between those runs touched).
- After 06:35: the dashboard's queues part is kept and asked again by a thread, as the
  snapshot is, and a process that has not asked yet waits only for the workers with a
  recent heartbeat. At 06:35 its slowest views had taken 1.1-1.4 s, about once a minute:
  the question waited out its whole 1 s timeout to find new workers. At 07:13 the
  dashboard's p95 was 219 ms and its slowest view 359 ms.
- Memory, before 08:36: beat's first five-minute full check had read a second copy of
  every schedule's fingerprint (+6.5 MiB; now compared row by row, keeping only changed
  rows: +0.7 MiB at 10,000 schedules), and the alert sweep's first pass read the
  schedules 2,000 at a time (4.7 MiB; now 500 at a time: 1.4 MiB). At 08:36 beat grew
  +0.0 MiB and no process more than +3.6 MiB from 2 minutes in.
- After 08:36: a reused PostgreSQL connection is checked without a round trip
  (project/postgresql: 2.9 to 1.9 transactions per API call in pg_stat_database), which
  no latency measured here shows (`bench.latency` back to back with Django's own check:
  API POST p50 6.0 ms with Django's, 6.3 ms with this one).

Measured on the AMD machine and not kept:

- The worker at a lower CPU priority (nice 10), 3-minute runs at 100 API calls a second
  (`--minutes 3 --steps 1.0 --api-rate 100`): API p95 55 ms against 53 ms without, both
  145 % busy.
- gunicorn's threads handing over the GIL every 1 ms instead of every 5: 48 ms against
  53-55 ms, but an earlier pair gave 116 against 310 ms, and 137 against 94 ms with the
  order reversed (the first run of a pair was the slower one).
- Two gunicorn processes (`--web-workers 2`): 28 ms on a faster spell (136 % busy), but
  at the target, back to back with one process, 194 against 177 ms, 192 % and 189 %
  busy, and the worker fell behind. The API's p95 follows how busy the machine is, not
  how the web tier is arranged.
- A faster web server: granian (Rust, WSGI) against gunicorn's gthread, the same 4
  threads, alternating rounds of 2,000 API calls from 4 client threads: 2.8-3.2 ms of
  server CPU a call for granian, 2.8-3.3 ms for gunicorn (4.0 ms in its first round).
- The worker's own Redis work. Profiled (cProfile on CPU time, 10,000 jobs), the
  worker's main process used more CPU than its two pool processes together (without the
  profiler about as much: 0.79-1.08 against 0.81-1.24 ms a job, 10,000 jobs queued
  beforehand), and about 40 % of it was kombu's acknowledgement bookkeeping for Redis
  (two MULTI/EXEC pipelines a message: the unacknowledged copy written on delivery,
  deleted on ack), most of that in redis-py's per-command work. The same writes as
  non-transactional pipelines or as one Lua script each took 155-179 µs of CPU a
  message against 181-216 µs (10,000 messages, alternating): too little to patch kombu
  for.
- Freezing the worker's start-up objects out of the garbage collector's sight, as
  project/wsgi.py does for the web: over 10,000 jobs the collector took 0.03 s of the
  main process's 12 s of CPU, and next to nothing in the pool processes.

Each report's Machine line also times two fixed pieces of work before the stack starts
(`bench.common.reference_work`): a pure-Python loop (2,000,000 additions, the fastest of
5) and a byte sent to another process and back over a Unix socket pair (the mean of
20,000), the wake-up each of the stack's Redis and PostgreSQL round trips pays. Neither
follows the loaded stack's cost: the loop took 88, 54, 70, 56, 61 and 57 ms before the
runs of 12:22, 12:43, 13:09, 13:22, 14:27 and 17:07 (131 %, 138 %, 106 %, 94 %, 111 %
and 107 % at the first step), the round trip 31, 34, 37 and 32 µs before the last
four. They say how fast the idle machine was at the start; the first step's CPU column
is the better measure of what the loaded one costs.
"""


def report(r: Result, args) -> str:
    lines = [
        INTRO.format(
            schedules=args.schedules,
            rate=args.api_rate,
            people=args.people,
            rows=args.rows,
            web=f"{args.web_workers} gthread processes, 4 threads each"
            if args.web_workers
            else "one gthread process with 4 threads, compose's command",
        ).strip(),
        "",
        f"Command: `{command_line('bench.mixed')}`  ",
        f"Machine: {r.description}  ",
        measured(),
        "",
        *step_table(r, args),
        "",
        *cpu_table(r, args),
        "",
        *page_table(r),
        "",
        *memory_table(r),
        "",
        *verdicts(r, args),
    ]
    return "\n".join(lines)


def slowest_views(r: Result, count: int = 10) -> str:
    """Printed only: the slowest page views, when they began (seconds after t0)."""
    views = sorted(r.pages, key=lambda v: v[1] - v[2])[:count]  # [page, began, ended, status]
    lines = ["Slowest page views (s after the load began: page, ms, status):"]
    lines += [f"  {began - r.t0:6.1f} s  {name}  {1000 * (ended - began):.0f} ms  {status}"
              for name, began, ended, status in views]  # fmt: skip
    return "\n".join(lines)


def in_window(t: float, r: Result, step: Step) -> bool:
    return r.t0 + step.start <= t < r.t0 + step.end


def step_table(r: Result, args) -> list[str]:
    lines = [
        "| step | API offered/s | answered/s | behind at end | errors | API p50 | API p95 | "
        "jobs queued/s | finished/s | waiting at end | lateness p99 | slowest page p95 |",
        "|---|" + "---:|" * 11,
    ]
    for n, step in enumerate(r.steps):
        f = step_figures(r, n, args)
        lines.append(
            f"| {step_label(step)} | {f['offered']:.0f} | {f['answered']:.0f} | "
            f"{f['behind']:,} | {f['errors']:,} | {ms(f['api_p50'])} | {ms(f['api_p95'])} | "
            f"{f['queued']:.0f} | {f['finished']:.0f} | {f['waiting']:,} | "
            f"{secs(f['lateness_p99'])} | {ms(f['page_p95'])} ({f['page_worst']}) |"
        )
    return lines


def cpu_table(r: Result, args) -> list[str]:
    names = list(r.samples.cpu[0]) if r.samples.cpu else []
    lines = [
        "CPU per step, as a share of one core (user + system time of each process tree; "
        "the machine's column counts every process on it, other work included, of 200 %):",
        "",
        "| step | " + " | ".join(names) + " | machine |",
        "|---|" + "---:|" * (len(names) + 1),
    ]
    for n, step in enumerate(r.steps):
        f = step_figures(r, n, args)
        cpu = " | ".join(f"{f['cpu'].get(name, float('nan')):.0%}" for name in names)
        lines.append(f"| {step_label(step)} | {cpu} | {f['machine']:.0%} |")
    return lines


def step_label(step: Step) -> str:
    return f"{step.share:.0%} ({step.start:.0f}-{step.end:.0f} s)"


def step_figures(r: Result, n: int, args) -> dict:
    step = r.steps[n]
    seconds = step.end - step.start
    sent = [c for c in r.api if c[1] is not None]
    times = [c[2] - c[1] for c in sent if c[3] == 201 and in_window(c[1], r, step)]
    answered = [c for c in sent if c[3] == 201 and in_window(c[2], r, step)]
    end = r.t0 + step.end
    behind = sum(c[0] < end and (c[1] is None or c[1] >= end) for c in r.api)
    errors = sum(c[3] not in (201, NOT_SENT) and in_window(c[1], r, step) for c in sent)
    views = [p for p in r.pages if in_window(p[1], r, step)]
    by_page: dict[str, list[float]] = {}
    for name, began, ended, _status in views:
        by_page.setdefault(name, []).append(ended - began)
    worst = max(by_page, key=lambda k: percentile(by_page[k], 0.95), default="-")
    lags = [lag for due, lag in r.lags if in_window(due, r, step)]
    return {
        "offered": step.share * args.api_rate,
        "answered": len(answered) / seconds,
        "behind": behind,  # calls due by the step's end and not yet made
        "errors": errors,
        "api_p50": percentile(times, 0.5),
        "api_p95": percentile(times, 0.95),
        "queued": sum(in_window(q, r, step) for q, _ in r.runs) / seconds,
        "finished": sum(f is not None and in_window(f, r, step) for _, f in r.runs) / seconds,
        "waiting": queue_at(r, r.t0 + step.end),
        "lateness_p99": percentile(lags, 0.99),
        "page_p95": percentile(by_page.get(worst, []), 0.95),
        "page_worst": worst,
        "cpu": cpu_shares(r, r.t0 + step.start, r.t0 + step.end),
        "machine": (r.machine_cpu[n + 1] - r.machine_cpu[n]) / seconds
        if len(r.machine_cpu) > n + 1
        else float("nan"),
    }


def nearest(r: Result, moment: float) -> int:
    return min(range(len(r.samples.times)), key=lambda i: abs(r.samples.times[i] - moment))


def queue_at(r: Result, moment: float) -> int:
    return r.samples.queue[nearest(r, moment)] if r.samples.queue else 0


def cpu_shares(r: Result, start: float, end: float) -> dict[str, float]:
    if not r.samples.cpu:
        return {}
    a, b = nearest(r, start), nearest(r, end)
    wall = r.samples.times[b] - r.samples.times[a]
    if wall <= 0:
        return {}
    return {g: (r.samples.cpu[b][g] - r.samples.cpu[a][g]) / wall for g in r.samples.cpu[a]}


def page_table(r: Result) -> list[str]:
    last = r.steps[-1]
    by_page: dict[str, list[float]] = {}
    errors: dict[str, int] = {}
    for name, began, ended, status in r.pages:
        if in_window(began, r, last):
            by_page.setdefault(name, []).append(ended - began)
            errors[name] = errors.get(name, 0) + (status != 200)
    lines = [
        f"Pages in the last step ({last.share:.0%} of the load, {last.end - last.start:.0f} s), "
        "as the people waited for them (client side, queueing at the web server included):",
        "",
        "| page | views | p50 | p95 | max | errors |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, times in by_page.items():
        lines.append(
            f"| {name} | {len(times)} | {ms(percentile(times, 0.5))} | "
            f"{ms(percentile(times, 0.95))} | {ms(max(times))} | {errors[name]} |"
        )
    return lines


SETTLE = 120.0  # seconds: beat builds each schedule's send plan as it first fires
FLAT_MIB = 5.0  # growth after SETTLE that still counts as flat, for our processes
NOT_OURS = ("Redis", "PostgreSQL")  # hold the backlog / fill shared buffers: see the text


def settle_index(r: Result) -> int:
    s = r.samples
    return nearest(r, r.t0 + SETTLE) if s.times and s.times[-1] - r.t0 > 2 * SETTLE else 0


def growth(r: Result) -> dict[str, float]:
    """MiB each process grew from the settle sample to the last one."""
    first = settle_index(r)
    return {name: values[-1] - values[min(first, len(values) - 1)]
            for name, values in r.samples.rss.items() if values}  # fmt: skip


def memory_table(r: Result) -> list[str]:
    s = r.samples
    if not s.times:
        return ["(no memory samples)"]
    settle = settle_index(r)
    since = f"{SETTLE / 60:.0f} min in" if settle else "the start"
    lines = [
        f"Memory (RSS; PostgreSQL as PSS summed over its processes), sampled every "
        f"{(s.times[-1] - s.times[0]) / max(1, len(s.times) - 1):.0f} s over "
        f"{(s.times[-1] - s.times[0]) / 60:.1f} min; growth counted from {since} to the end:",
        "",
        f"| process | start | {since + ' | ' if settle else ''}middle | end | max | growth "
        f"| over the last half |",
        "|---|---:|---:|---:|---:|---:|---:|" + ("---:|" if settle else ""),
    ]
    grew, lately = growth(r), late_growth(r)
    for name, values in s.rss.items():
        if not values:
            continue
        first = values[min(settle, len(values) - 1)]
        lines.append(
            f"| {name} | {values[0]:.0f} MiB | {f'{first:.0f} MiB | ' if settle else ''}"
            f"{values[len(values) // 2]:.0f} MiB | {values[-1]:.0f} MiB | "
            f"{max(values):.0f} MiB | {grew[name]:+.1f} MiB | {lately[name]:+.1f} MiB |"
        )
    return lines


def late_growth(r: Result) -> dict[str, float]:
    """MiB each process grew over the second half of the samples: a leak keeps growing
    there, a cache filling up (beat's send plans, a worker's first housekeeping task)
    does not."""
    return {name: values[-1] - values[len(values) // 2]
            for name, values in r.samples.rss.items() if values}  # fmt: skip


def memory_verdict(r: Result) -> str:
    if not settle_index(r):
        return (f"Memory: not judged in a run this short (under {2 * SETTLE / 60:.0f} min: "
                f"beat builds each schedule's send plan as it first fires, several MiB "
                f"at 10,000 schedules, then stays flat); see the full run.")  # fmt: skip
    ours = {k: v for k, v in growth(r).items() if not k.startswith(NOT_OURS)}
    grown = {k: v for k, v in ours.items() if v > FLAT_MIB}
    worst = max(ours.items(), key=lambda kv: kv[1], default=("-", 0.0))
    minutes = (r.samples.times[-1] - r.samples.times[settle_index(r)]) / 60 if ours else 0
    late = ", ".join(f"{k} {late_growth(r)[k]:+.1f} MiB" for k in grown)
    return (
        f"**Goal (issue 15: memory of every process flat under the load)**: "
        f"{'met' if not grown else 'not met'} over {minutes:.1f} min: web, worker and beat "
        f"processes grew at most {worst[1]:+.1f} MiB ({worst[0]}; flat: at most "
        f"{FLAT_MIB:g} MiB)"
        + (f"; grew: {', '.join(f'{k} {v:+.1f} MiB' for k, v in grown.items())}" if grown else "")
        + (f" (over the last half: {late})" if grown else "")
        + "."
    )


def verdicts(r: Result, args) -> list[str]:
    last = len(r.steps) - 1
    f = step_figures(r, last, args)
    views = [p for p in r.pages if in_window(p[1], r, r.steps[last])]
    by_page: dict[str, list[float]] = {}
    for name, began, ended, _ in views:
        by_page.setdefault(name, []).append(ended - began)
    slow = {
        k: percentile(v, 0.95)
        for k, v in by_page.items()
        if percentile(v, 0.95) >= GOALS["page_p95"]
    }
    lags = [lag for _, lag in r.lags]
    checks = [
        (
            "schedule lateness p99 < 1 s",
            percentile(lags, 0.99) < GOALS["lateness_p99"],
            f"p99 {secs(percentile(lags, 0.99))} over {len(lags):,} runs due, "
            f"{r.unsent:,} never sent",
        ),
        (
            "every page p95 < 300 ms",
            not slow and bool(by_page),
            "all under" if not slow else ", ".join(f"{k} {ms(v)}" for k, v in slow.items()),
        ),
        (
            "API enqueue p95 < 50 ms",
            f["api_p95"] < GOALS["api_p95"],
            f"p95 {ms(f['api_p95'])}, {f['answered']:.0f} answered/s of "
            f"{f['offered']:.0f} offered",
        ),
    ]
    lines = [
        f"**Goal (issue 15, mixed load at the target, last step)**: "
        f"{'met' if all(ok for _, ok, _ in checks) else 'not met'}: "
        + "; ".join(
            f"{goal}: {'met' if ok else 'not met'} ({detail})" for goal, ok, detail in checks
        )
        + f" (`{command_line('bench.mixed')}`).",
        "",
        memory_verdict(r),
        "",
        saturation(r, args),
    ]
    return lines


def saturation(r: Result, args) -> str:
    """The first step where a part fell behind, and which parts."""
    for n, step in enumerate(r.steps):
        f = step_figures(r, n, args)
        behind = []
        if f["finished"] < 0.95 * f["queued"] and f["waiting"] > 100:
            behind.append(
                f"the worker ({f['queued']:.0f} jobs queued a second, "
                f"{f['finished']:.0f} finished, {f['waiting']:,} waiting)"
            )
        if f["behind"] > max(10, f["offered"]) or f["api_p95"] >= GOALS["api_p95"]:
            behind.append(
                f"the API ({f['answered']:.0f} of {f['offered']:.0f} calls a second "
                f"answered, p95 {ms(f['api_p95'])}, {f['behind']:,} calls behind)"
            )
        if f["page_p95"] >= GOALS["page_p95"]:
            behind.append(f"the pages ({f['page_worst']} p95 {ms(f['page_p95'])})")
        if f["lateness_p99"] >= GOALS["lateness_p99"]:
            behind.append(f"beat (lateness p99 {secs(f['lateness_p99'])})")
        if behind:
            busiest = max(f["cpu"].items(), key=lambda kv: kv[1], default=("-", 0))
            stack = sum(v for k, v in f["cpu"].items() if not k.startswith("load"))
            return (
                f"**First to saturate**: at step {n + 1} ({step.share:.0%}: "
                f"{f['offered']:.0f} API calls and {args.schedules / 60:.0f} schedule "
                f"runs a second, {people(round(step.share * args.people))}): "
                f"{'; '.join(behind)}. The machine was {f['machine']:.0%} busy "
                f"(of 200 %), the stack's processes {stack:.0%} of it; the busiest part: "
                f"{busiest[0]} at {busiest[1]:.0%} of a core."
            )
    return "**First to saturate**: nothing fell behind at any step."


def people(count: int) -> str:
    return "1 person" if count == 1 else f"{count} people"


def ms(seconds: float) -> str:
    return "-" if seconds != seconds else f"{1000 * seconds:.0f} ms"


def secs(value: float) -> str:
    return "-" if value != value else f"{value:.2f} s"


if __name__ == "__main__":
    main()
