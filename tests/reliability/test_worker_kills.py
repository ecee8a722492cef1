"""Scenario 1: jobs keep coming while workers are SIGKILLed and restarted.

Two worker processes (prefork, 2 pool processes each). Every few seconds one of them
is SIGKILLed whole (and started again at once, under the same name) or loses one pool
process. Every idempotent job must end succeeded; a job not safe to run twice must end
failed, never run twice.
"""

import os
import time

import pytest
from django_celery_results.models import TaskResult

from apps.jobs import sweeper
from apps.jobs.models import Run, State
from tests.helpers import wait_for

from .stack import (
    RECORD,
    RECORD_ONCE,
    Ledger,
    count_runs,
    describe,
    report,
    send,
    sweep_until_finished,
    unfinished,
)

pytestmark = [
    pytest.mark.chaos,
    pytest.mark.postgres_pass,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(1800),
]

WORKERS = ("chaos1", "chaos2")
# CHAOS_KILL_EVERY=1 kills four times as often, to hunt for rare losses.
KILL_EVERY = float(os.environ.get("CHAOS_KILL_EVERY", "4"))
# SIGKILL a whole worker (restarted at once), or one pool process, in turn.
KILL_PLAN = [("chaos1", "worker"), ("chaos2", "pool process"),
             ("chaos2", "worker"), ("chaos1", "pool process")]  # fmt: skip


class Killer:
    def __init__(self, fleet, every: float = KILL_EVERY):
        self.fleet = fleet
        self.every = every
        self.turn = 0
        self.next_at = time.monotonic() + every

    def tick(self) -> None:
        if time.monotonic() < self.next_at:
            return
        name, mode = KILL_PLAN[self.turn % len(KILL_PLAN)]
        self.turn += 1
        self.next_at = time.monotonic() + self.every
        if mode == "worker":
            self.fleet.restart(name)
        else:
            self.fleet.kill_child(name)


def kill_while_running(fleet, ledger: Ledger, child: Run, whole: Run) -> None:
    """Kill the pool process running `child`, then the whole worker running `whole`."""
    wait_for(lambda: ledger.pid_running(child.task_id) and ledger.pid_running(whole.task_id))
    pid = ledger.pid_running(child.task_id)
    assert fleet.kill_child(fleet.owner_of(pid), pid)
    wait_for(lambda: TaskResult.objects.filter(task_id=child.task_id, status="FAILURE").exists())
    fleet.restart(fleet.owner_of(ledger.pid_running(whole.task_id)))


def test_every_job_succeeds_while_workers_are_killed_and_unsafe_ones_fail_instead(
    fleet, ledger, chaos_jobs, chaos_redis, record_property
):
    for name in WORKERS:
        fleet.start(name)
    fleet.wait_ready(*WORKERS)

    # Two jobs that are not safe to run twice, each killed mid-run.
    child, whole = send(RECORD_ONCE, ledger, 60), send(RECORD_ONCE, ledger, 60)
    kill_while_running(fleet, ledger, child, whole)

    killer = Killer(fleet)
    runs = []
    for index in range(chaos_jobs):
        runs.append(send(RECORD, ledger, 0.05 * (1 + index % 4)))
        killer.tick()
    ids = [run.task_id for run in runs]
    while unfinished(ids) > len(ids) // 10:
        killer.tick()
        sweeper.reconcile()
        time.sleep(0.2)
    sweep_until_finished([*ids, child.task_id, whole.task_id], timeout=120 + chaos_jobs / 5)

    counts = count_runs("worker kills", runs, ledger)
    unsafe = Run.objects.filter(pk__in=[child.pk, whole.pk])
    starts = ledger.counts("start")
    counts.extra.update(
        kills=dict(fleet.kills),
        unsafe_failed=unsafe.filter(state=State.FAILED).count(),
        unsafe_ran_twice=sum(starts[run.task_id] > 1 for run in unsafe),
    )
    report(counts, record_property)
    assert counts.lost == 0, describe(runs, ledger, chaos_redis.url)
    assert counts.extra["unsafe_failed"] == 2
    assert counts.extra["unsafe_ran_twice"] == 0
    assert fleet.kills["worker"] >= 2 and fleet.kills["pool process"] >= 1
