"""Issue 14, scenario 5: a highly available Redis on hosts (switchyard_dev/hosts.py).

docker-compose.yml's "sentinel" profile: the primary `redis`, `redis-replica` and three
Sentinels; Switchyard reaches Redis through the Sentinels only (CELERY_BROKER_URL
sentinel://..., REDIS_SENTINEL_MASTER). The primary's host is SIGKILLed while jobs are
being started through the web host's API: the replica is promoted, workers, beat and
web follow it without a restart, and every run ends succeeded.

Replication is asynchronous: what the primary took in its last moments and had not yet
passed on (a message, an acknowledgement) is gone from the promoted replica. The counts
say what came back and how: redelivered (a message run again), sent again by the
sweeper (a message lost), waiting to be sent (a start refused by the broker mid-failover).
Full size only: `make chaos-hosts`.
"""

import threading
import time

import pytest
import redis
from redis.sentinel import Sentinel

from .hosts_stack import (
    Api,
    Database,
    count,
    make_ledger,
    running_topology,
    start_jobs,
    wait_finished,
)
from .stack import report

pytestmark = [
    pytest.mark.hosts,
    pytest.mark.hosts_full,
    pytest.mark.postgres_pass,
    pytest.mark.slow,
    pytest.mark.timeout(1800),
]

JOBS = 1000
MASTER = "switchyard"
SENTINELS = "sentinel://sentinel-1:26379;sentinel://sentinel-2:26379;sentinel://sentinel-3:26379"


def primary(sentinel: Sentinel) -> str | None:
    try:
        found = sentinel.discover_master(MASTER)
    except redis.RedisError:
        return None
    return found[0]


def replica_in_sync(sentinel: Sentinel) -> bool:
    try:
        return bool(sentinel.discover_slaves(MASTER))
    except redis.RedisError:
        return False


def wait(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def test_killing_the_redis_primary_while_jobs_flow_loses_none_of_them(tmp_path, record_property):
    env = {"CELERY_BROKER_URL": SENTINELS, "REDIS_SENTINEL_MASTER": MASTER}
    with running_topology(workers=2, beats=2, profiles=("sentinel",), env=env) as topo:
        api, db, ledger = Api(topo), Database(topo), make_ledger(tmp_path)
        nodes = [(topo.address(f"sentinel-{i}"), 26379) for i in (1, 2, 3)]
        sentinel = Sentinel(nodes, socket_timeout=1)
        assert wait(lambda: replica_in_sync(sentinel), 60), "no replica known to the Sentinels"
        started = []
        sender = threading.Thread(
            target=lambda: started.append(start_jobs(api, ledger, JOBS, 0.02))
        )
        sender.start()
        assert wait(lambda: len(ledger.lines()) >= JOBS // 6, 300)
        topo.kill("redis")
        killed_at = time.monotonic()
        killed_at_db = db.rows("SELECT now()")[0][0]
        promoted = wait(lambda: primary(sentinel) == topo.address("redis-replica"), 60)
        promoted_s = time.monotonic() - killed_at
        sender.join(900)
        assert started, "the API stopped answering"
        task_ids = started[0].task_ids
        finished = wait_finished(db, task_ids, timeout=600)
        counts = count("hosts: redis primary killed (sentinel)", db, task_ids, ledger)
        resent = db.rows(
            "SELECT count(*) FROM jobs_run WHERE task_id = ANY(%s) AND note LIKE 'Sent again%%'",
            task_ids,
        )[0][0]
        redelivered = db.rows(
            "SELECT count(*) FROM jobs_run WHERE task_id = ANY(%s) AND deliveries > 1", task_ids
        )[0][0]
        after_kill = dict(db.rows(
            "SELECT worker, count(*) FROM jobs_run WHERE task_id = ANY(%s) AND started_at > %s "
            "GROUP BY worker", task_ids, killed_at_db,
        ))  # fmt: skip
        counts.extra.update(
            promoted_s=round(promoted_s, 1),
            after_kill={worker.split("@")[-1]: n for worker, n in after_kill.items()},
            answered_waiting=started[0].states["pending_send"],
            request_max_s=round(max(started[0].latencies), 1),
            redelivered=redelivered,
            sent_again_by_sweeper=resent,
        )
        report(counts, record_property)

        assert promoted, "the replica was not promoted"
        assert finished, f"{db.unfinished(task_ids)} runs unfinished"
        assert counts.lost == 0
        assert counts.executed >= JOBS
        assert set(after_kill) == {"celery@worker-1", "celery@worker-2"}, "a worker stopped"
