"""Scenario 3: PostgreSQL restarts (fast shutdown, 5 s down) while jobs run.

This scenario brings its own cluster, so it can stop and start it; workers, beat and the
dispatching process use that database, and the test reads it with plain SQL.
"""

import subprocess
import time

import psycopg
import pytest
from django.db import connection

from apps.devstack import processes
from project import celery_app
from switchyard_dev.services import postgres_bindir, restartable_postgres
from tests.helpers import wait_for

from .stack import Counts, report, send_many_command, settle

pytestmark = [pytest.mark.chaos, pytest.mark.slow, pytest.mark.timeout(900)]

WORKERS = ("chaos1", "chaos2")
JOBS = 40
DOWN = 5.0
SCHEDULER = "apps.scheduling.schedulers:SwitchyardScheduler"


@pytest.fixture
def postgres():
    if postgres_bindir() is None:
        pytest.skip("no PostgreSQL binaries (initdb)")
    if connection.vendor == "postgresql":
        pytest.skip("runs once, in the SQLite pass: it starts and restarts its own cluster")
    with restartable_postgres() as server:
        yield server


def rows(url: str, sql: str, *params) -> list[tuple]:
    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        return conn.execute(sql, params).fetchall()


def states(url: str, task_ids: list[str]) -> dict[str, tuple[str, str | None]]:
    """task id -> (run state, stored Celery status)."""
    found = rows(
        url,
        "SELECT r.task_id, r.state, t.status FROM jobs_run r LEFT JOIN "
        "django_celery_results_taskresult t ON t.task_id = r.task_id "
        "WHERE r.task_id = ANY(%s)",
        task_ids,
    )
    return {task_id: (state, status) for task_id, state, status in found}


def all_finished(url: str, task_ids: list[str]) -> bool:
    """Ask a worker to sweep (as beat's schedule does), then look."""
    celery_app.send_task("apps.jobs.tasks.sweep")
    current = states(url, task_ids)
    finished = ("succeeded", "failed", "cancelled", "skipped")
    return len(current) == len(task_ids) and all(s in finished for s, _ in current.values())


def beat_ticked_since(url: str, moment: float) -> bool:
    seen = rows(url, "SELECT extract(epoch FROM seen_at) FROM ops_heartbeat WHERE name = 'beat'")
    return bool(seen) and float(seen[0][0]) > moment


def test_every_result_is_stored_when_postgresql_restarts_during_runs(
    postgres, chaos_redis, fleet, ledger, start_process, subprocess_env, record_property
):
    env = {"DATABASE_URL": postgres.url, "CELERY_BROKER_URL": chaos_redis.url}
    manage = [processes.PYTHON, "manage.py"]
    subprocess.run([*manage, "migrate", "-v", "0"], env={**subprocess_env, **env}, check=True)
    fleet.env.update(env)
    # No worker dies here: keep the real visibility timeout. With the chaos suite's short
    # one, a job waiting out the outage in its result-store retries would be handed to
    # the other worker and run twice (see docs/reliability.md).
    del fleet.env["CELERY_VISIBILITY_TIMEOUT"]
    for name in WORKERS:
        fleet.start(name)
    beat = start_process(processes.beat_command("-S", SCHEDULER), **env)
    fleet.wait_ready(*WORKERS)

    sent = subprocess.run(
        send_many_command(ledger, JOBS, 0.5), env={**subprocess_env, **env},
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    wait_for(lambda: len(ledger.counts("done")) >= JOBS // 5, timeout=120)
    in_flight = sum((ledger.counts("start") - ledger.counts("done")).values())
    postgres.stop()
    restarted_at = time.time()
    time.sleep(DOWN)
    postgres.start()
    settle(lambda: all_finished(postgres.url, sent), timeout=180, interval=2)

    current = states(postgres.url, sent)
    done = ledger.counts("done")
    succeeded = [t for t, (state, status) in current.items()
                 if state == "succeeded" and status == "SUCCESS"]  # fmt: skip
    counts = Counts(
        "postgresql restart",
        sent=len(sent),
        executed=sum(done[t] for t in sent),
        succeeded=len(succeeded),
        lost=len(sent) - len(succeeded),
        duplicated=sum(max(0, done[t] - 1) for t in sent),
        extra={"in_flight_at_restart": in_flight},
    )
    report(counts, record_property)
    assert counts.lost == 0, {t: s for t, s in current.items() if t not in succeeded}
    assert counts.duplicated == 0
    assert all(fleet.workers[name].poll() is None for name in WORKERS), "a worker died"
    assert beat.poll() is None, "beat died"
    wait_for(lambda: beat_ticked_since(postgres.url, restarted_at + DOWN), timeout=60)
