"""Scenario 6: RabbitMQ with quorum queues, a three-node cluster, one node killed.

Three private rabbitmq-server nodes, each on a host of its own (a network namespace of
the hosts harness with its own address, hostname and epmd; switchyard_dev/
rabbitmq_cluster.py), form a cluster over the bridge; Switchyard runs with
CELERY_TASK_DEFAULT_QUEUE_TYPE=quorum and a failover broker URL naming all three. Two
workers and a sender process, in the test's own namespace, reach the nodes through the
bridge and connect to the first node, where the `celery` quorum queue gets its leader
(replicas on the other two). While the sender publishes jobs, the leader's host dies
(SIGKILL of its whole process group and its epmd): publishers and workers fail over to
another node, the queue elects a new leader from its replicas. Every run must succeed,
none executed twice.

Needs root (network namespaces); runs in `make chaos` and `make chaos-hosts` only
(marker hosts_full), on one database.
"""

import json
import os
from pathlib import Path

import pytest

from apps.devstack import processes
from apps.jobs.models import FINISHED_STATES, Run
from switchyard_dev.rabbitmq_cluster import cluster_skip_reason, rabbitmq_cluster, running_nodes

from .stack import RECORD, Fleet, count_runs, describe, report, settle

pytestmark = [
    pytest.mark.chaos,
    pytest.mark.hosts,  # issue 14's scenario 6: `make chaos-hosts` runs it too
    pytest.mark.hosts_full,  # never in `make test`
    pytest.mark.postgres_pass,  # one pass is enough: the broker is what it tests
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(900),
    pytest.mark.skipif(cluster_skip_reason() is not None, reason=str(cluster_skip_reason())),
]

JOBS = int(os.environ.get("CHAOS_QUORUM_JOBS", "300"))
PER_SECOND = 20


def queue_info(node, name: str = "celery") -> dict:
    rows = json.loads(node.ctl("list_queues", "name", "type", "leader", "members",
                               "messages_ready", "messages_unacknowledged", "consumers",
                               "--formatter", "json"))  # fmt: skip
    return next((row for row in rows if row["name"] == name), {})


def test_with_quorum_queues_killing_the_leader_node_loses_nothing_and_runs_nothing_twice(
    start_process, ledger, record_property
):
    with rabbitmq_cluster(3) as nodes:
        failover = ";".join(node.url for node in nodes)
        env = {"CELERY_BROKER_URL": failover, "CELERY_TASK_DEFAULT_QUEUE_TYPE": "quorum"}
        fleet = Fleet(start_process, env)
        for name in ("quorum1", "quorum2"):
            fleet.start(name)
        fleet.wait_ready()
        queue = queue_info(nodes[0])
        assert queue.get("type") == "quorum" and len(queue["members"]) == 3, queue
        leader = next(node for node in nodes if node.name == queue["leader"])

        code = (f"from tests.reliability.stack import send_paced; "
                f"send_paced({str(ledger.path)!r}, {JOBS}, {PER_SECOND}, 120)")  # fmt: skip
        sender = start_process(
            [processes.PYTHON, "manage.py", "shell", "-v", "0", "-c", code], **env
        )
        settle(lambda: len(ledger.counts("done")) >= JOBS // 4, 120, 0.2)
        leader.kill()
        assert settle(lambda: not leader.topo.pids(leader.host), 10), "the host kept processes"
        killed_at_done = len(ledger.counts("done"))
        survivors = [node for node in nodes if node is not leader]
        new_leader = settle(lambda: queue_info(survivors[0]).get("leader") not in
                            (None, "", leader.name), 60)  # fmt: skip
        sender.wait(timeout=JOBS / PER_SECOND + 180)
        runs = list(Run.objects.filter(job_name=RECORD))
        settle(lambda: not Run.objects.filter(job_name=RECORD)
               .exclude(state__in=FINISHED_STATES).exists(), 180)  # fmt: skip
        counts = count_runs("rabbitmq quorum", runs, ledger)
        counts.extra.update(
            killed=leader.host, done_when_killed=killed_at_done,
            new_leader=queue_info(survivors[0]).get("leader", "?").split("@")[-1],
            running_nodes=len(running_nodes(survivors[0])),
            # Messages whose ack was lost with the node come back: skipped, not run again.
            redeliveries_skipped=sum(Path(fleet.log(name)).read_text(errors="replace")
                                     .count("Task already completed successfully")
                                     for name in fleet.workers),
        )  # fmt: skip
        report(counts, record_property)
        assert counts.sent == JOBS
        assert new_leader
        where = f"queue now: {queue_info(survivors[0])}"
        assert counts.lost == 0, where + "\n" + describe(runs, ledger)
        assert counts.duplicated == 0, describe(runs, ledger)
        assert counts.executed == JOBS
