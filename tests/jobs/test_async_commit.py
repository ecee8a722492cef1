"""RUN_RECORDS_ASYNC_COMMIT: run records that commit without waiting for the WAL flush,
and what a PostgreSQL crash right after an enqueue, or right after a worker's claim of
a run, keeps and loses, either way.

Each test has its own cluster (synchronous_commit on, as in production; the WAL writer
slowed to every 10 s, so an unflushed commit stays unflushed for the test's few
milliseconds) and enqueues from a subprocess, which kills PostgreSQL's postmaster
(SIGQUIT: an immediate shutdown, as in a crash) the moment it is done.
"""

import json
import os
import subprocess
import textwrap

import psycopg
import pytest
import redis

from apps.devstack import processes
from switchyard_dev.services import postgres_bindir, restartable_postgres
from tests.helpers import wait_for
from tests.jobs import crash_job

pytestmark = [pytest.mark.once, pytest.mark.slow, pytest.mark.timeout(300)]

# Every enqueue way a caller has: the web's and API's `start_run`, a `.delay()`, a bulk
# start; inside a caller's own transaction, a `.delay()` and a user written beside it;
# then one more enqueue, LAST_WAY (the runs a crash can lose). Prints what it made.
ENQUEUE_THEN_CRASH = textwrap.dedent("""
    import json, os, signal, time, uuid
    from kombu.exceptions import OperationalError
    from django.contrib.auth.models import User
    from django.db import transaction
    from apps.demo.tasks import add
    from apps.jobs import catalog, dispatch
    from apps.jobs.models import Source

    job = catalog.get_job("apps.demo.tasks.add")
    made = {}
    made["start_run"] = dispatch.start_run(job, {"x": 1, "y": 2}, source=Source.CLI).task_id
    made["delay"] = str(uuid.uuid4())
    try:
        add.apply_async((3, 4), task_id=made["delay"])
    except OperationalError:
        made["delay_refused"] = True  # the broker is down: the run is recorded all the same
    made["bulk"] = [r.task_id for r in dispatch.start_runs(
        job, [{"x": n, "y": n} for n in range(3)], source=Source.CLI)]
    with transaction.atomic():
        User.objects.create(username="written-beside")
        made["in_transaction"] = add.delay(5, 6).id
    last = os.environ.get("LAST_WAY", "start_run")
    if last == "start_run":
        made["last"] = [dispatch.start_run(job, {"x": 7, "y": 8}, source=Source.CLI).task_id]
    elif last == "delay":
        made["last"] = [add.delay(7, 8).id]
    else:
        made["last"] = [r.task_id for r in dispatch.start_runs(
            job, [{"x": n, "y": n} for n in range(3)], source=Source.CLI)]
    pid = int(open(os.environ["POSTMASTER_PID_FILE"]).readline())
    os.kill(pid, signal.SIGQUIT)
    print(json.dumps(made))
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
""")


@pytest.fixture
def postgres():
    if postgres_bindir() is None:
        pytest.skip("no PostgreSQL binaries (initdb)")
    production_like = {"synchronous_commit": "on", "wal_writer_delay": "10s", "autovacuum": "off"}
    with restartable_postgres(settings=production_like) as server:
        manage = [processes.PYTHON, "manage.py", "migrate", "-v", "0"]
        subprocess.run(manage, env={**os.environ, "DATABASE_URL": server.url}, check=True)
        yield server


def enqueue_then_crash(postgres, subprocess_env, *, async_commit: bool, broker: str,
                       last_way: str = "start_run") -> dict:  # fmt: skip
    made = manage_shell(ENQUEUE_THEN_CRASH, postgres, subprocess_env, broker,
                        LAST_WAY=last_way,
                        RUN_RECORDS_ASYNC_COMMIT="true" if async_commit else "false",
                        POSTMASTER_PID_FILE=str(postgres.data / "postmaster.pid"))  # fmt: skip
    postgres.start()  # recovery replays what reached the WAL files, nothing more
    return json.loads(made)


def manage_shell(code: str, postgres, subprocess_env, broker, **env: str) -> str:
    """Run `code` in `manage.py shell` on this cluster and broker; its last line."""
    env = {**subprocess_env, "DATABASE_URL": postgres.url, "CELERY_BROKER_URL": broker, **env}
    command = [processes.PYTHON, "manage.py", "shell", "-c", code]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


def rows(postgres, sql: str, *params) -> list[tuple]:
    with psycopg.connect(postgres.url, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


def states_after_restart(postgres, task_ids: list[str]) -> dict[str, str]:
    return dict(rows(postgres, "SELECT task_id, state FROM jobs_run WHERE task_id = ANY(%s)",
                     task_ids))  # fmt: skip


def user_written_beside(postgres) -> bool:
    return bool(rows(postgres, "SELECT 1 FROM auth_user WHERE username = 'written-beside'"))


def stored_results(postgres, task_ids: list[str]) -> set[str]:
    found = rows(postgres, "SELECT status FROM django_celery_results_taskresult "
                 "WHERE task_id = ANY(%s)", task_ids)  # fmt: skip
    return {status for (status,) in found} if len(found) == len(task_ids) else set()


def queued_message_ids(redis_url: str) -> set[str]:
    messages = redis.Redis.from_url(redis_url).lrange("celery", 0, -1)
    return {json.loads(raw)["headers"]["id"] for raw in messages}


def every_id(made: dict) -> list[str]:
    return [made["start_run"], made["delay"], *made["bulk"], made["in_transaction"], *made["last"]]


@pytest.fixture
def broker(redis_url) -> str:
    """The session's Redis server, a database of its own: no test worker takes these."""
    url = redis_url.rsplit("/", 1)[0] + "/9"
    redis.Redis.from_url(url).flushdb()
    return url


def test_by_default_every_run_record_survives_a_crash_right_after_its_enqueue(
    postgres, subprocess_env, broker
):
    made = enqueue_then_crash(postgres, subprocess_env, async_commit=False, broker=broker)

    assert states_after_restart(postgres, every_id(made)) == dict.fromkeys(
        every_id(made), "queued"
    )
    assert user_written_beside(postgres)


@pytest.mark.parametrize("last_way", ["start_run", "delay", "bulk"])
def test_with_async_commit_a_crash_right_after_an_enqueue_loses_its_records_not_its_runs(
    postgres, subprocess_env, broker, start_process, last_way
):
    made = enqueue_then_crash(postgres, subprocess_env, async_commit=True, broker=broker,
                              last_way=last_way)  # fmt: skip

    survived = states_after_restart(postgres, every_id(made))
    assert not set(made["last"]) & set(survived)  # committed, never flushed: the trade
    assert set(made["last"]) <= queued_message_ids(broker)
    # A caller's own transaction is never made asynchronous: it commits with its flush.
    assert survived[made["in_transaction"]] == "queued"
    assert user_written_beside(postgres)
    # The jobs whose records were lost still run, and their results are stored.
    start_process(processes.worker_command(1, "-n", "after-crash@localhost"),
                  DATABASE_URL=postgres.url, CELERY_BROKER_URL=broker)  # fmt: skip
    wait_for(lambda: stored_results(postgres, made["last"]) == {"SUCCESS"}, timeout=60)


def test_with_async_commit_a_run_the_broker_did_not_take_survives_a_crash(
    postgres, subprocess_env
):
    nobody = f"redis://127.0.0.1:{processes.free_port()}/0"

    made = enqueue_then_crash(postgres, subprocess_env, async_commit=True, broker=nobody)

    # Each failed publish set its runs back to pending_send with a synchronous commit,
    # which flushed their INSERTs too: nothing the broker did not take is lost.
    not_sent = every_id(made)
    assert made.get("delay_refused")
    assert states_after_restart(postgres, not_sent) == dict.fromkeys(not_sent, "pending_send")
    assert user_written_beside(postgres)


# Enqueues the crash job (its record committed with the flush, as by default) and prints
# its task id.
ENQUEUE_CRASH_JOB = textwrap.dedent("""
    import tests.jobs.crash_job
    from apps.jobs import catalog, dispatch
    from apps.jobs.models import Source

    job = catalog.get_job(tests.jobs.crash_job.NAME)
    print(dispatch.start_run(job, {}, source=Source.CLI).task_id)
""")

RECONCILE = "from apps.jobs import sweeper; print(sweeper.reconcile())"


def postmaster_pid(postgres) -> int:
    return int((postgres.data / "postmaster.pid").read_text().splitlines()[0])


@pytest.mark.parametrize("async_commit", [False, True])
def test_a_crash_right_after_a_workers_claim_keeps_the_runs_outcome(
    postgres, subprocess_env, broker, start_process, async_commit
):
    """A run's first claim (queued -> started) is the one worker write
    RUN_RECORDS_ASYNC_COMMIT makes asynchronous: a crash right after it loses it, and
    nothing else. The job's
    outcome is still stored, and the sweeper's reconcile puts it on the run."""
    start_process(
        processes.worker_command(1, "-n", f"claims-{async_commit}@localhost", "--include",
                                 crash_job.__name__),
        DATABASE_URL=postgres.url, CELERY_BROKER_URL=broker,
        RUN_RECORDS_ASYNC_COMMIT="true" if async_commit else "false",
        POSTMASTER_PID_FILE=str(postgres.data / "postmaster.pid"),
    )  # fmt: skip
    postmaster = postmaster_pid(postgres)
    task_id = manage_shell(ENQUEUE_CRASH_JOB, postgres, subprocess_env, broker)

    wait_for(lambda: not crash_job.alive(postmaster), timeout=60)  # the job crashed it
    postgres.start()
    after_restart = states_after_restart(postgres, [task_id])[task_id]
    if async_commit:
        assert after_restart == "queued"  # the claim was lost: the trade
    else:  # the claim was on disk (and its execution, going on, may have finished it)
        assert after_restart in ("started", "succeeded")
    # The job's execution went on: its outcome, written once the database was back.
    wait_for(lambda: stored_results(postgres, [task_id]) == {"SUCCESS"}, timeout=90)
    manage_shell(RECONCILE, postgres, subprocess_env, broker)
    assert states_after_restart(postgres, [task_id]) == {task_id: "succeeded"}
