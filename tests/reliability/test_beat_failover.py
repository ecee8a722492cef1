"""Scenario 4: two beats share 20 schedules; the leader is SIGKILLed mid-stream.

Only the holder of the leader lease (apps.scheduling.lease) dispatches; the standby
takes over when the lease lapses and must send every due run exactly once: none lost
in the failover, none sent by both. The schedules send to a queue no worker reads, so
every message beat sent is still there to be counted.
"""

import json
import os
import signal
import time
import uuid
from collections import Counter
from datetime import UTC, datetime

import pytest
import redis
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from apps.devstack import processes
from apps.scheduling.lease import BEAT_KEY
from tests.helpers import wait_for

from .stack import Counts, report

pytestmark = [
    pytest.mark.chaos,
    pytest.mark.once,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(600),
]

SCHEDULER = "apps.scheduling.schedulers:SwitchyardScheduler"
SCHEDULES = 20
EVERY = 5  # seconds; longer than a failover (lease 2 s, renewed every 0.7 s)
LEASE = 2
KILLS = 2


def make_schedules(queue: str, first_due: float) -> dict[str, float]:
    """20 interval schedules, their first runs spread over one period from first_due;
    returns name -> last_run_at (unix time)."""
    interval, _ = IntervalSchedule.objects.get_or_create(every=EVERY, period="seconds")
    last_runs = {}
    for index in range(SCHEDULES):
        last = first_due + index * EVERY / SCHEDULES - EVERY
        name = f"chaos schedule {index:02d}"
        PeriodicTask.objects.create(
            name=name, task="apps.demo.tasks.add", kwargs=json.dumps({"x": index, "y": 1}),
            interval=interval, queue=queue, last_run_at=datetime.fromtimestamp(last, UTC),
        )  # fmt: skip
        last_runs[name] = last
    return last_runs


def leader_pid(client: redis.Redis) -> int | None:
    owner = client.get(BEAT_KEY)
    return int(owner.decode().split(":")[-2]) if owner else None


def sent_messages(client: redis.Redis, queue: str) -> list[dict]:
    return [json.loads(raw)["headers"] for raw in client.lrange(queue, 0, -1)]


def expected_dues(last_runs: dict[str, float], until: float) -> set[tuple[str, float]]:
    due = set()
    for name, last in last_runs.items():
        moment = last + EVERY
        while moment <= until:
            due.add((name, round(moment, 3)))
            moment += EVERY
    return due


def due_of(headers: dict) -> tuple[str, float]:
    moment = datetime.fromisoformat(headers["switchyard_due"]).timestamp()
    return headers["periodic_task_name"], round(moment, 3)


def fail_over(client: redis.Redis, beats: list, start_beat) -> float:
    """SIGKILL the leading beat, start a new standby, wait for one of the two living
    beats to take the lease; return the seconds without a leader."""
    leader = next(beat for beat in beats if beat.pid == leader_pid(client))
    os.killpg(leader.pid, signal.SIGKILL)
    killed_at = time.time()
    beats.remove(leader)
    beats.append(start_beat())
    wait_for(lambda: leader_pid(client) in {beat.pid for beat in beats}, timeout=30)
    return time.time() - killed_at


def test_every_due_run_is_sent_once_when_the_leading_beat_is_killed(
    chaos_redis, start_process, record_property
):
    client = redis.Redis.from_url(chaos_redis.url)
    env = {"CELERY_BROKER_URL": chaos_redis.url, "BEAT_LEASE_SECONDS": str(LEASE)}

    def start_beat():
        return start_process(processes.beat_command("-S", SCHEDULER), **env)

    beats = [start_beat(), start_beat()]
    wait_for(lambda: leader_pid(client) in {beat.pid for beat in beats}, timeout=90)

    queue = f"chaos-beat-{uuid.uuid4().hex[:8]}"
    first_due = time.time() + 4
    last_runs = make_schedules(queue, first_due)
    takeovers = []
    for kill in range(KILLS):
        time.sleep(max(0.0, first_due + (2.4 + 3 * kill) * EVERY - time.time()))
        takeovers.append(fail_over(client, beats, start_beat))
    time.sleep(max(0.0, first_due + (3 * KILLS + 1) * EVERY - time.time()))
    stopped_at = time.time()
    processes.stop_all(beats)

    messages = [h for h in sent_messages(client, queue) if h.get("periodic_task_name")]
    ids = Counter(headers["id"] for headers in messages)
    dues = Counter(due_of(headers) for headers in messages)
    expected = expected_dues(last_runs, stopped_at - 1)
    counts = Counts(
        "beat failover",
        sent=len(messages),
        executed=None,  # no worker: what counts here is what beat sent
        succeeded=len(expected & set(dues)),
        lost=len(expected - set(dues)),
        duplicated=sum(n - 1 for n in dues.values()),
        extra={
            "due": len(expected),
            "leaders_killed": KILLS,
            "longest_takeover_s": round(max(takeovers), 1),
        },
    )
    report(counts, record_property)
    missing = sorted((name, round(due - first_due, 2)) for name, due in expected - set(dues))
    assert counts.lost == 0, f"missing (s after the first due): {missing}, {takeovers=}"
    assert counts.duplicated == 0, [due for due, n in dues.items() if n > 1]
    assert max(ids.values(), default=1) == 1
    assert max(takeovers) < EVERY
