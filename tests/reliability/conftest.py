"""Fixtures of the chaos suite: each scenario gets its own Redis, workers and ledger.

CHAOS_JOBS sets how many jobs the worker-kill scenario sends: a short run (200) in
`make test`, 1,000 in `make chaos`.
"""

import os

import pytest

from tests.helpers import point_celery_at

from .stack import REPORTS, Fleet, Ledger, RedisServer

# Short enough that a killed worker's jobs come back within the test, and longer than
# any chaos job runs or waits in a worker's prefetch (see docs/reliability.md).
VISIBILITY_TIMEOUT = 10
# The workers' sweeps send again a message Redis lost after this long (see stack.py).
LOST_AFTER = 20


@pytest.fixture
def chaos_jobs() -> int:
    return int(os.environ.get("CHAOS_JOBS", "200"))


@pytest.fixture
def chaos_redis(tmp_path, redis_url):
    """A Redis of this test's own (stopped and started by some scenarios); the test
    process's Celery app points at it for the test."""
    server = RedisServer(tmp_path / "chaos-redis")
    server.start()
    point_celery_at(server.url)
    yield server
    point_celery_at(redis_url)
    server.stop()


@pytest.fixture
def ledger(tmp_path) -> Ledger:
    return Ledger(tmp_path / "ledger.txt")


@pytest.fixture
def fleet(start_process, chaos_redis) -> Fleet:
    env = {
        "CELERY_BROKER_URL": chaos_redis.url,
        "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
        "SWEEP_LOST_AFTER_SECONDS": str(LOST_AFTER),
    }
    return Fleet(start_process, env)


def pytest_terminal_summary(terminalreporter) -> None:
    if REPORTS:
        terminalreporter.section("chaos suite counts")
        for counts in REPORTS:
            terminalreporter.write_line(counts.line())
