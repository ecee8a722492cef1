"""What the hosts scenarios share: the topology's environment, the web host's API as a
user calls it, and counts read straight from the db host's PostgreSQL.

HOSTS_SCALE=full (`make chaos-hosts`) runs every scenario at full size; otherwise the
short versions run (`make test`, PostgreSQL pass only).
"""

import contextlib
import json
import os
import secrets
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

from switchyard_dev.hosts import Topology, skip_reason

from .stack import Counts, Ledger

FULL = os.environ.get("HOSTS_SCALE") == "full"
RECORD = "tests.reliability.chaos_jobs.record"
LEASE = 2  # BEAT_LEASE_SECONDS of the beat hosts
VISIBILITY_TIMEOUT = 30


def topology_env(**overrides: str) -> dict[str, str]:
    """What the operator's .env holds (.env.example's variables), for these hosts."""
    password = secrets.token_urlsafe(12)
    return {
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "web",
        "POSTGRES_DB": "switchyard",
        "POSTGRES_USER": "switchyard",
        "POSTGRES_PASSWORD": password,
        "DATABASE_URL": f"postgres://switchyard:{password}@db:5432/switchyard",
        "CELERY_BROKER_URL": "redis://redis:6379/0",
        "ADMIN_USER": "admin",
        "ADMIN_PASSWORD": secrets.token_urlsafe(12),
        "DEMO_JOBS": "false",
        "DJANGO_SETTINGS_MODULE": "tests.reliability.hosts_settings",
        "BEAT_LEASE_SECONDS": str(LEASE),
        "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
        "SWEEP_PENDING_AFTER_SECONDS": "8",  # more than a flush can take (scheduling.W001)
        "SWEEP_LOST_AFTER_SECONDS": "20",
        **overrides,
    }


@contextlib.contextmanager
def running_topology(**kwargs):
    reason = skip_reason()
    if reason:
        pytest.skip(f"hosts scenarios: {reason}")
    with Topology(topology_env(**kwargs.pop("env", {})), **kwargs) as topo:
        try:
            topo.up()
            yield topo
        except BaseException:
            for name in topo.hosts:
                print(f"===== {name} =====\n{topo.log(name)[-4000:]}")
            raise


class Api:
    """The web host's API, as a user's script calls it: HTTP, a bearer token, behind a
    TLS-terminating proxy (X-Forwarded-Proto)."""

    def __init__(self, topo: Topology):
        self.base = f"http://{topo.address('web')}:8000/api"
        code = (
            "from django.contrib.auth import get_user_model; "
            "from apps.api.models import ApiToken; "
            "user = get_user_model().objects.get(username='admin'); "
            "print(ApiToken.issue(user, 'hosts scenarios')[1])"
        )
        self.token = topo.run("web", ["python", "manage.py", "shell", "-c", code]).split()[-1]

    def start(self, job: str, parameters: dict, timeout: float = 30) -> tuple[int, dict]:
        body = json.dumps({"parameters": parameters}).encode()
        request = urllib.request.Request(
            f"{self.base}/jobs/{job}/runs", data=body, method="POST",
            headers={"Authorization": f"Bearer {self.token}", "Host": "web",
                     "Content-Type": "application/json", "X-Forwarded-Proto": "https"},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, {"error": error.read().decode(errors="replace")[:500]}


@dataclass
class Started:
    """What the API answered: each run's task id and state, each request's seconds."""

    task_ids: list[str] = field(default_factory=list)
    states: Counter = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)


def start_jobs(api: Api, ledger: Ledger, count: int, seconds: float) -> Started:
    """Start `count` chaos jobs through the API, one request after the other."""
    started = Started()
    for _ in range(count):
        began = time.monotonic()
        status, body = api.start(RECORD, {"ledger": str(ledger.path), "seconds": seconds})
        started.latencies.append(time.monotonic() - began)
        assert status == 201, (status, body)
        started.task_ids.append(body["task_id"])
        started.states[body["state"]] += 1
    return started


class Database:
    """The db host's PostgreSQL, read by the test process as an operator's psql would."""

    def __init__(self, topo: Topology):
        self.url = topo.database_url()

    def rows(self, query: str, *params) -> list[tuple]:
        with psycopg.connect(self.url, autocommit=True, connect_timeout=5) as connection:
            return connection.execute(query, params).fetchall()

    def runs(self, task_ids: list[str]) -> dict[str, tuple]:
        """task id -> (state, worker, deliveries)."""
        rows = self.rows(
            "SELECT task_id, state, worker, deliveries FROM jobs_run WHERE task_id = ANY(%s)",
            task_ids,
        )
        return {task_id: rest for task_id, *rest in rows}

    def stored_successes(self, task_ids: list[str]) -> set[str]:
        rows = self.rows(
            "SELECT task_id FROM django_celery_results_taskresult "
            "WHERE task_id = ANY(%s) AND status = 'SUCCESS'",
            task_ids,
        )
        return {task_id for (task_id,) in rows}

    def unfinished(self, task_ids: list[str]) -> int:
        finished = ("succeeded", "failed", "cancelled", "skipped")
        runs = self.runs(task_ids)
        return len(task_ids) - sum(1 for state, *_ in runs.values() if state in finished)


def wait_finished(db: Database, task_ids: list[str], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while db.unfinished(task_ids):
        if time.monotonic() > deadline:
            return False
        time.sleep(1)
    return True


def count(scenario: str, db: Database, task_ids: list[str], ledger: Ledger) -> Counts:
    """As stack.count_runs, read from the db host: succeeded when both the run record and
    Celery's stored result say so; executed and duplicated from the ledger."""
    runs = db.runs(task_ids)
    succeeded = {t for t, (state, *_) in runs.items() if state == "succeeded"}
    both = succeeded & db.stored_successes(task_ids)
    done = ledger.counts("done")
    shares = Counter(worker.split("@")[-1] for _, worker, _ in runs.values() if worker)
    return Counts(
        scenario,
        sent=len(task_ids),
        executed=sum(done[t] for t in task_ids),
        succeeded=len(both),
        lost=len(set(task_ids) - both),
        duplicated=sum(max(0, done[t] - 1) for t in task_ids),
        extra={f"on_{host}": n for host, n in sorted(shares.items())},
    )


def make_ledger(tmp_path: Path) -> Ledger:
    """A ledger every host can append to (hosts share the file system, not the network)."""
    ledger = Ledger(tmp_path / "ledger.txt")
    tmp_path.chmod(0o777)
    return ledger
