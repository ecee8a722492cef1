"""Real parts for the tests: an embedded Redis server and a real Celery worker.

Tests that talk to the worker use `@pytest.mark.django_db(transaction=True)`: the
worker runs in this process, on its own thread and database connection.
"""

import os
import subprocess

import pytest
from celery.contrib.testing.worker import start_worker
from django.db import connection, connections

from apps.devstack import processes
from project import celery_app


@pytest.fixture(scope="session", autouse=True)
def redis_url(tmp_path_factory) -> str:
    """A real redis-server for the whole session; the Celery app points at it."""
    port = processes.free_port()
    data_dir = tmp_path_factory.mktemp("redis")
    server = processes.spawn(processes.redis_command(port, data_dir))
    url = f"redis://127.0.0.1:{port}/0"
    processes.wait_for_redis(url)
    celery_app.conf.broker_url = url
    yield url
    processes.stop_all([server])


@pytest.fixture(scope="session")
def django_db_modify_db_settings(tmp_path_factory) -> None:
    """A test database of this session's own, so parallel runs never share one."""
    from django.conf import settings

    database = settings.DATABASES["default"]
    if database["ENGINE"].endswith("sqlite3"):
        database["TEST"]["NAME"] = str(tmp_path_factory.mktemp("db") / "test.sqlite3")
    else:
        database.setdefault("TEST", {})["NAME"] = f"test_switchyard_{os.getpid()}"


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Broker snapshots and chart data are cached for seconds (the local-memory cache,
    shared by the session's tests): each test starts clean, whatever ran before it."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _no_broker_back_off_from_an_earlier_test():
    """A publish that failed in one test (a broker stopped on purpose) must not make the
    next test's starts wait as pending_send (apps.jobs.sending.BROKER_BACKOFF_SECONDS)."""
    from apps.jobs import sending

    sending.note_broker(up=True)
    yield
    sending.note_broker(up=True)


@pytest.fixture(autouse=True)
def _plain_http_in_tests(settings) -> None:
    """Production settings redirect to HTTPS; the test client speaks plain HTTP."""
    settings.SECURE_SSL_REDIRECT = False
    # Hashing test users' passwords with the production hasher costs ~1 s each.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="session")
def celery_worker(redis_url, django_db_setup, django_db_blocker):
    """One in-process worker (4 threads) for the session."""
    import celery.contrib.testing.tasks  # noqa: F401  (registers celery.ping)

    _drop_messages_no_worker_was_up_for(redis_url)
    with django_db_blocker.unblock():
        connections.close_all()
        with start_worker(
            celery_app, pool="threads", concurrency=4, loglevel="WARNING",
            perform_ping_check=True, shutdown_timeout=30,
        ) as worker:  # fmt: skip
            yield worker
        _end_worker_sessions()


def _drop_messages_no_worker_was_up_for(redis_url: str) -> None:
    """Tests that ran before the worker's first use published runs (and beat's sends)
    with no worker up, and expected none: those messages would run first when it
    starts, and its start's ping would wait behind them (for at most 10 s). kombu keeps
    a queue's messages in a Redis list, and those a worker took but did not
    acknowledge in `unacked` (redelivered to the next worker)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    lists = [key for key in client.scan_iter() if client.type(key) == b"list"]
    client.delete(*lists, "unacked", "unacked_index", "unacked_mutex")


def _end_worker_sessions() -> None:
    """Worker threads keep their database connections between tasks (apps.jobs.worker.connections)
    and may outlive the worker: end those sessions so the test database can be dropped."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )


def test_database_url() -> str:
    """The URL of the test database, for subprocesses (beat, workers, devstack)."""
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    return f"postgres://{s['USER']}@{s['HOST']}:{s['PORT']}/{s['NAME']}"


test_database_url.__test__ = False


@pytest.fixture
def subprocess_env(redis_url) -> dict[str, str]:
    """Environment for a child process that joins this test's Redis and database."""
    return {
        **os.environ,
        "CELERY_BROKER_URL": redis_url,
        "DATABASE_URL": test_database_url(),
        "PYTHONUNBUFFERED": "1",
    }


@pytest.fixture
def start_process(subprocess_env, tmp_path):
    """Start stack processes (beat, workers) for one test; stop them afterwards."""
    started: list[subprocess.Popen] = []

    def start(command: list[str], **env: str) -> subprocess.Popen:
        log = open(tmp_path / f"process-{len(started)}.log", "wb")  # noqa: SIM115
        child = processes.spawn(
            command, env={**subprocess_env, **env}, stdout=log, stderr=subprocess.STDOUT
        )
        child.log_path = log.name
        started.append(child)
        return child

    yield start
    processes.stop_all(started)


@pytest.fixture
def root_client(client):
    """Django's test client, logged in as a superuser."""
    from tests.helpers import make_superuser

    client.force_login(make_superuser())
    return client
