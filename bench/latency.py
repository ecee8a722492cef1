"""Trigger latency: a web POST (form or API) to the task starting, beside raw `.delay()`.

    .venv/bin/python -m bench.latency [--triggers 200] [--quick] [--no-write]

Starts its own Redis and PostgreSQL, then:

1. raw Celery (a bare app, no Django, Redis results): `.delay()` of a task that returns
   time.time() as its body starts; latency = that minus the time just before `.delay()`
   (bench/baselines/clock_client.py, a process without Django);
2. Switchyard: gunicorn (as in docker-compose.yml) and the project's prefork worker (2
   processes); one trigger at a time on the idle stack, the three ways in turn:
   `add.delay(1, 1)` from this process, the job form POSTed by a logged-in user, and
   `POST /api/jobs/<job>/runs` with a bearer token. Latency = the run's started_at
   (written by the worker as the task starts) minus the time just before the call.

Same clock (one machine). Report: p50/p95/max per way, and the web response time. Written
to docs/performance.md ("Trigger latency").
"""

import argparse
import json
import re
import secrets
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import requests

from apps.devstack import processes

from .common import (
    Stack,
    command_line,
    measured,
    median,
    percentile,
    private_stack,
    raw_result_backend,
    running_worker,
    worker_env,
    write_section,
)

HEADING = "Trigger latency"


@dataclass
class Samples:
    way: str
    latencies: list[float]  # seconds from the call to the task started
    responses: list[float]  # seconds the call itself took (empty: not measured)
    recorded: list[float] = field(default_factory=list)  # seconds from the call to queued_at


JOB = "apps.demo.tasks.add"
CLOCK_QUEUE = "bench-clock"
WARMUP = 5


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    with private_stack() as stack:
        samples = [Samples("raw Celery `.delay()` (Redis results)",
                           raw_latencies(stack, args.triggers), [])]  # fmt: skip
        samples += switchyard_latencies(stack, args.triggers)
    text = report(samples, args)
    print(text)
    if not args.no_write:
        write_section(HEADING, text)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--triggers", type=int, default=200, help="per way of triggering")
    parser.add_argument("--quick", action="store_true", help="30 triggers each")
    parser.add_argument("--no-write", action="store_true", help="do not touch the docs")
    args = parser.parse_args(argv)
    if args.quick:
        args.triggers = min(args.triggers, 30)
    return args


# Raw Celery -------------------------------------------------------------------------------


def raw_latencies(stack: Stack, triggers: int) -> list[float]:
    with running_worker(stack, "raw", "bench-latency-raw@localhost", "-c", "2",
                        "-Q", CLOCK_QUEUE):  # fmt: skip
        out = subprocess.run(
            [processes.PYTHON, "-m", "bench.baselines.clock_client", stack.redis_url,
             raw_result_backend(stack), CLOCK_QUEUE, str(triggers), str(WARMUP)],
            env=worker_env(stack, "raw"), capture_output=True, text=True, check=True,
        )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


# Switchyard ---------------------------------------------------------------------------------


class Web:
    """A logged-in browser session and an API token against the running web server."""

    def __init__(self, base_url: str, username: str, password: str, token: str):
        self.base_url, self.token = base_url, token
        self.session = requests.Session()
        login = f"{base_url}/admin/login/"
        self.session.get(login, timeout=10)
        self.session.post(login, timeout=10, data={
            "username": username, "password": password, "next": "/",
            "csrfmiddlewaretoken": self.session.cookies["csrftoken"],
        })  # fmt: skip
        assert "sessionid" in self.session.cookies, "login failed"
        self.api = requests.Session()  # a script's client: its token, no cookies
        self.api.headers["Authorization"] = f"Bearer {token}"

    def post_form(self) -> tuple[int, float]:
        data = {"x": "1", "y": "1", "idempotency_key": str(uuid.uuid4()),
                "csrfmiddlewaretoken": self.session.cookies["csrftoken"]}  # fmt: skip
        started = time.perf_counter()
        response = self.session.post(f"{self.base_url}/jobs/{JOB}/", data=data,
                                     allow_redirects=False, timeout=10)  # fmt: skip
        elapsed = time.perf_counter() - started
        location = response.headers.get("Location", "")
        match = re.search(r"/runs/(\d+)/", location)
        assert response.status_code == 302 and match, (response.status_code, location)
        return int(match.group(1)), elapsed

    def post_api(self) -> tuple[int, float]:
        started = time.perf_counter()
        response = self.api.post(f"{self.base_url}/api/jobs/{JOB}/runs", timeout=10,
                                 json={"parameters": {"x": 1, "y": 1}})  # fmt: skip
        elapsed = time.perf_counter() - started
        assert response.status_code == 201, (response.status_code, response.text[:300])
        return response.json()["id"], elapsed

    def round_trips(self, count: int) -> list[float]:
        """Seconds each GET /healthz takes (no database, no broker): the floor any web
        trigger pays before its view starts work, on the same server and client."""
        durations = []
        for _ in range(count):
            started = time.perf_counter()
            response = self.session.get(f"{self.base_url}/healthz", timeout=10)
            durations.append(time.perf_counter() - started)
            assert response.status_code == 200, response.status_code
            time.sleep(0.05)
        return durations


FLOOR = "(floor) GET /healthz, same server and client: no job"


def delay() -> tuple[int, float]:
    from apps.demo.tasks import add
    from apps.jobs.models import Run

    started = time.perf_counter()
    sent = add.delay(1, 1)
    elapsed = time.perf_counter() - started
    return Run.objects.get(task_id=sent.id).pk, elapsed


def switchyard_latencies(stack: Stack, triggers: int) -> list[Samples]:
    username, password, token = make_caller()
    with (running_worker(stack, "switchyard", "bench-latency@localhost", "-c", "2"),
          web_server(stack) as base_url):  # fmt: skip
        web = Web(base_url, username, password, token)
        ways: dict[str, Callable[[], tuple[int, float]]] = {
            "Switchyard `.delay()` (run recorded)": delay,
            "Switchyard job form POST": web.post_form,
            "Switchyard API POST (token)": web.post_api,
        }
        samples = [Samples(way, [], []) for way in ways]
        for number in range(WARMUP + triggers):
            for sample, trigger in zip(samples, ways.values(), strict=True):
                latency, recorded, response = measure(trigger)
                if number >= WARMUP:
                    sample.latencies.append(latency)
                    sample.recorded.append(recorded)
                    sample.responses.append(response)
        samples.append(Samples(FLOOR, [], web.round_trips(WARMUP + triggers)[WARMUP:]))
    return samples


def measure(trigger: Callable[[], tuple[int, float]]) -> tuple[float, float, float]:
    """Seconds from the call to the run's started_at and to its queued_at (the run
    record written), and the call's own duration; waits for the run to finish."""
    from apps.jobs.models import Run

    sent = time.time()
    pk, response = trigger()
    # The times come from the run record: not asking for it while the worker starts the
    # task leaves the stack to itself (each question is a query, and 2 cores are shared).
    time.sleep(0.03)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        run = Run.objects.only("queued_at", "started_at", "state").get(pk=pk)
        if run.is_finished and run.started_at:
            time.sleep(0.05)  # an idle stack between triggers
            started, recorded = (run.started_at.timestamp() - sent,
                                 run.queued_at.timestamp() - sent)  # fmt: skip
            return started, recorded, response
        time.sleep(0.005)
    raise RuntimeError(f"run {pk} did not finish in 30 s")


def make_caller() -> tuple[str, str, str]:
    """A superuser (for the form) with an API token (for the API)."""
    from django.contrib.auth import get_user_model

    from apps.api.models import ApiToken

    password = uuid.uuid4().hex
    user = get_user_model().objects.create_superuser("bench", "bench@example.com", password)
    return "bench", password, ApiToken.issue(user, "bench")[1]


@contextmanager
def web_server(stack: Stack) -> Iterator[str]:
    """gunicorn as docker-compose.yml runs it, on a free loopback port, plain HTTP."""
    port = processes.free_port()
    env = stack.env(SECURE_SSL_REDIRECT="false", SECURE_COOKIES="false",
                    ALLOWED_HOSTS="127.0.0.1", DEBUG="false",
                    SECRET_KEY=secrets.token_urlsafe(50))  # fmt: skip
    command = processes.gunicorn_command(f"127.0.0.1:{port}", "--log-level", "warning")
    server = processes.spawn(command, env=env)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{base_url}/healthz", server)
        yield base_url
    finally:
        processes.stop_all([server])


def wait_for_http(url: str, server: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and server.poll() is None:
        try:
            if requests.get(url, timeout=10).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"web server at {url} did not answer")


# Report ---------------------------------------------------------------------------------

INTRO = """
One trigger at a time on an idle stack (each run finishes, then 50 ms pass), {triggers}
per way after {warmup} warm-up triggers, the three Switchyard ways in turn. Latency =
the moment the task started, as the worker wrote it (Switchyard: the run's `started_at`;
raw Celery: the task body's first line), minus the time just before the call; one
machine, one clock. Web = gunicorn as docker-compose.yml runs it (one process, 4
threads, connections kept alive: project/gunicorn.py) and the project's prefork worker
with 2 processes, on private Redis and PostgreSQL. The clients keep their connections,
as a browser and a script's HTTP session do. The run's times come from its record; the
benchmark asks for them 30 ms after the call, then every 5 ms, so that its own queries
do not compete with the worker starting the task. To run recorded = from the call to the
run's `queued_at` (the moment the view, or `.delay()`'s publish signal, wrote the run
record, just before publishing): the rest of "to started" is the broker and the worker.
Response = how long the call itself took (the POST's response, or `.delay()` returning).
The floor row is a GET of /healthz (no database, no broker) on the same server, by the
same client: what any web trigger pays before its view starts work. Goal (issues 8 and
15): web POST to task started, p50 under 10 ms.

The path of a form POST: gunicorn and Django's middleware (the session and the user: two
queries); the view asks `may_run`, which reads the user's permissions in one statement
(apps.jobs.permissions.ModelBackend, the site's auth backend; Django's own builds and
runs two ORM queries, the user's and their groups'), validates the form and takes
`queued_at` ("to run recorded" ends here); it writes the run (one INSERT that commits by
itself: a reused idempotency key fails on the unique index, and the first run with that
key is returned instead) and publishes the message (Celery builds it; LPUSH to Redis);
the worker's main process takes it and hands it to a pool process, which takes
`started_at` as it stores the STARTED state. Only that last stretch, the broker and
worker hand-off, is what raw `.delay()` pays too; `.delay()` in Switchyard also writes
the run record (one INSERT) before publishing. An API POST reads its token (one SELECT,
the user joined) instead of the session and the user; the token's last-used time is
written at most once a minute, and the 201 answer reads no stored result for a run not
started yet (issue 15: two statements fewer per call than before).

Where the rest goes (issue 15; timestamps at each stage of 40 form POSTs, gunicorn's
request hooks and Celery's signals, on a lightly loaded machine; medians from the
client's call): `queued_at` at 5.3-5.8 ms, Celery's `before_task_publish` at 7.1 ms (the
INSERT), `after_task_publish` at 8.6 ms (Celery and kombu building and pushing the
message), the worker's main process has it at 9.7-10.1 ms, its pool process starts the
task at 11.4-12.3 ms, while the web process is still writing the run's "queued" state
and answering (12.2 ms). Served in-process (Django's test client, no HTTP), the same
POST takes 6.3-6.7 ms, 1.7 ms of it in its four statements (session 0.4, user 0.25,
INSERT 0.6, UPDATE 0.5 ms), and /healthz 0.4 ms: of the floor's 3.9 ms, about 1.5 ms is
python-requests itself (a raw socket does the same request in 1.4 ms, requests in 2.9),
the rest gunicorn with a new connection per request (its sync worker keeps none alive)
and Django's 0.4 ms.
Those timings were taken with gunicorn's sync worker (a new connection per request),
`apply_async` for every dispatch and a benchmark that queried the run every 5 ms from
the call on. Since then (issue 15): the web service keeps connections alive
(project/gunicorn.py: gthread), the dispatcher builds each message with its job's send
plan (apps/jobs/publishing.py: Celery's settings, options and routing worked out once
per job instead of per call), the API client keeps its session as the form's does, and
the benchmark leaves the stack alone for 30 ms after each call (its queries had
competed with the worker for the 2 cores while the task started). Four runs of 80
triggers each, alternating the sync worker (`GUNICORN_CMD_ARGS="--worker-class sync
--threads 1"`) with the threaded one, after these changes: form POST p50 8.9 and 8.2 ms
(sync) against 9.2 and 7.9 ms (gthread), API POST 8.3 and 7.8 ms against 8.2 and 6.8
ms, floor 3.2 and 2.9 ms against 3.2 and 2.4 ms: the keep-alive is worth a few tenths
of a millisecond, within the noise of one run; most of the change came from the
dispatch and from the benchmark no longer loading the machine it measures.
"""


def ms(seconds: float) -> str:
    return f"{1000 * seconds:.1f} ms"


def report(samples: list[Samples], args) -> str:
    lines = [
        INTRO.format(triggers=args.triggers, warmup=WARMUP).strip(),
        "",
        f"Command: `{command_line('bench.latency')}`  ",
        measured(),
        "",
        "| trigger | to started: p50 | p95 | max | to run recorded p50 | response p50 |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for s in samples:
        response = ms(median(s.responses)) if s.responses else "-"
        recorded = ms(median(s.recorded)) if s.recorded else "-"
        p50, p95, top = (ms(median(s.latencies)), ms(percentile(s.latencies, 0.95)),
                         ms(max(s.latencies))) if s.latencies else ("-", "-", "-")  # fmt: skip
        lines.append(f"| {s.way} | {p50} | {p95} | {top} | {recorded} | {response} |")
    return "\n".join([*lines, "", *where_the_time_goes(samples), verdict(samples)])


def where_the_time_goes(samples: list[Samples]) -> list[str]:
    """The form POST's median split at the floor and at `queued_at`, beside raw Celery."""
    by_way = {s.way: s for s in samples}
    form, floor = by_way.get("Switchyard job form POST"), by_way.get(FLOOR)
    if form is None or floor is None:
        return []
    total, recorded = median(form.latencies), median(form.recorded)
    bare, raw = median(floor.responses), median(samples[0].latencies)
    return [
        f"Where a form POST's {ms(total)} goes (medians of this run): {ms(bare)} is the "
        f"HTTP round trip and Django answering a request that does nothing (the floor); "
        f"{ms(recorded - bare)} the session, the user, the form and the view up to "
        f"`queued_at`; {ms(total - recorded)} the INSERT, Celery building and publishing "
        f"the message, and the worker taking it and starting the task, a stretch where "
        f"raw Celery's `.delay()` alone takes {ms(raw)}. The floor and raw Celery's own "
        f"latency add up to {ms(bare + raw)} before any Switchyard code runs.",
        "",
    ]


def verdict(samples: list[Samples]) -> str:
    web = [s for s in samples if "POST" in s.way]
    met = all(median(s.latencies) < 0.010 for s in web)
    numbers = "; ".join(f"{s.way.removeprefix('Switchyard ')} p50 {ms(median(s.latencies))}, "
                        f"{ms(median(s.recorded))} of it before the run is recorded"
                        for s in web)  # fmt: skip
    floor = [median(s.responses) for s in samples if s.way == FLOOR]
    floor_text = (f"; a bare GET /healthz on the same server takes {ms(floor[0])}, so the "
                  f"parts alone come to {ms(floor[0] + median(samples[0].latencies))}"
                  if floor else "")  # fmt: skip
    return (f"**Goal 4 (issues 8 and 15: web POST to task started, p50 under 10 ms)**: "
            f"{'met' if met else 'not met'}: {numbers}; raw Celery's own `.delay()` to "
            f"start takes {ms(median(samples[0].latencies))} in the same run{floor_text} "
            f"(`{command_line('bench.latency')}`).")  # fmt: skip


if __name__ == "__main__":
    main()
