"""Scenario 2: Redis stops for 10 seconds in the middle of a stream of dispatches.

Runs dispatched while it is down are recorded "waiting to be sent" (start_run's path)
or fail to publish from a plain `.delay()` (the record stays, the caller sees the
error); the sweeper sends them once Redis is back. Redis restarts on the same port with
the same append-only file, so the messages it held survive; the workers reconnect by
themselves.
"""

import time

import pytest
from celery import current_app
from kombu.exceptions import OperationalError

from apps.jobs import sweeper
from apps.jobs.models import Run

from .stack import RECORD, count_runs, describe, report, send, sweep_until_finished

pytestmark = [
    pytest.mark.chaos,
    pytest.mark.postgres_pass,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(900),
]

WORKERS = ("chaos1", "chaos2")
OUTAGE = 10.0
RATE = 10  # dispatches a second


def delay(ledger) -> Run:
    """A plain `.delay()` from a shell: recorded by the publish signal, sent or not."""
    kwargs = {"ledger": str(ledger.path), "seconds": 0.05}
    try:
        result = current_app.send_task(RECORD, kwargs=kwargs)
        task_id = result.id
    except OperationalError:
        task_id = None
    if task_id is None:  # the caller saw the error; the run record waits to be sent
        return Run.objects.latest("pk")
    return Run.objects.get(task_id=task_id)


def stream(ledger, seconds: float, runs: list[Run]) -> None:
    """Dispatch RATE runs a second for `seconds`, alternating the two paths."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        began = time.monotonic()
        runs.append(send(RECORD, ledger, 0.05) if len(runs) % 2 else delay(ledger))
        sweeper.send_pending()
        time.sleep(max(0.0, 1 / RATE - (time.monotonic() - began)))


def test_no_run_is_lost_or_sent_twice_when_redis_stops_for_ten_seconds(
    fleet, chaos_redis, ledger, record_property
):
    for name in WORKERS:
        fleet.start(name)
    fleet.wait_ready(*WORKERS)

    runs: list[Run] = []
    stream(ledger, 5, runs)
    chaos_redis.stop()
    down = len(runs)
    stream(ledger, OUTAGE, runs)
    down = len(runs) - down
    chaos_redis.start()
    stream(ledger, 5, runs)
    sweep_until_finished([run.task_id for run in runs], timeout=180)

    counts = count_runs("redis restart", runs, ledger)
    counts.extra["sent_while_down"] = down
    counts.extra["sent_by_sweeper"] = Run.objects.filter(
        task_id__in=[run.task_id for run in runs], send_attempts__gt=0
    ).count()
    report(counts, record_property)
    assert counts.lost == 0, describe(runs, ledger)
    assert counts.duplicated == 0, describe(runs, ledger)
    assert counts.extra["redelivered"] == 0
    assert len({run.task_id for run in runs}) == len(runs)
