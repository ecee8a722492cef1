"""Scenario 5: a worker lost (SIGKILLed whole) and a worker cut off (SIGSTOPped whole,
then continued) while they hold runs; nothing else happens to the broker.

Three workers: `lostA` and `lostB` consume one queue each, `rescuer` consumes both and
the default queue, where the test sends the `sweep` job every second (what beat does
every 30 s). lostA holds an idempotent run and one not safe to run twice and is killed;
lostB holds two idempotent runs and is stopped. The sweeper, running on the rescuer,
finds both silent past WORKER_LOST_AFTER_SECONDS: the idempotent runs resume on the
rescuer, the unsafe one is failed with a note. lostB is then continued: it finishes its
two jobs late, and their outcomes are refused (the run and its result say the rescuer).
Redis's visibility timeout is long enough that it plays no part in the resumption; in
the short version it then hands lostA's message out again, and that copy does not run.
"""

import contextlib
import os
import signal
import time
from pathlib import Path

import pytest
import redis
from django.utils import timezone
from django_celery_results.models import TaskResult
from kombu.exceptions import OperationalError

from apps.jobs.dispatch import record_and_send
from apps.jobs.models import FINISHED_STATES, Run, Source, State
from apps.jobs.tasks import sweep
from project import celery_app
from tests.helpers import wait_for

from .stack import RECORD, RECORD_ONCE, Fleet, Ledger, count_runs, describe, report, settle

pytestmark = [
    pytest.mark.postgres_pass,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(900),
]

VICTIMS = {"lostA": "victim_a", "lostB": "victim_b"}


def start_fleet(start_process, chaos_redis, *, lost_after: int, visibility: int) -> Fleet:
    fleet = Fleet(start_process, {
        "CELERY_BROKER_URL": chaos_redis.url,
        "CELERY_VISIBILITY_TIMEOUT": str(visibility),
        "WORKER_LOST_AFTER_SECONDS": str(lost_after),
    })  # fmt: skip
    for name, queue in VICTIMS.items():
        fleet.start(name, "-Q", queue)
    fleet.start("rescuer", "-Q", "celery", concurrency=4)
    fleet.wait_ready()
    return fleet


def rescuer_takes_the_victims_queues(fleet: Fleet) -> None:
    """Only once the victims hold their runs, or the idle rescuer would take them first."""
    rescuer = fleet.nodename("rescuer")
    for queue in VICTIMS.values():
        # The reply may come late on a busy machine: wait for the consuming itself.
        celery_app.control.add_consumer(queue, destination=[rescuer], reply=True, timeout=5)
        assert wait_for(lambda q=queue: q in queues_of(rescuer), timeout=60), queue


def queues_of(worker: str) -> set[str]:
    """The queues `worker` consumes, as it answers `inspect active_queues`."""
    replies = celery_app.control.inspect(destination=[worker], timeout=2).active_queues() or {}
    return {queue["name"] for queue in replies.get(worker, [])}


def send_to(queue: str, job_name: str, ledger: Ledger, seconds: float) -> Run:
    parameters = {"ledger": str(ledger.path), "seconds": seconds}
    return record_and_send(job_name, parameters, source=Source.SHELL, label="chaos",
                           options={"queue": queue})  # fmt: skip


def signal_group(fleet: Fleet, name: str, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(fleet.workers[name].pid, sig)


def log_of(fleet: Fleet, name: str) -> str:
    return Path(fleet.log(name)).read_text(errors="replace")


def taken_over(runs: list[Run], rescuer: str) -> bool:
    """Every run is on the rescuer now, or finished (the unsafe one: failed)."""
    fresh = Run.objects.filter(pk__in=[run.pk for run in runs])
    return all(run.worker == rescuer or run.state in FINISHED_STATES for run in fresh)


def all_succeeded(runs: list[Run]) -> bool:
    done = Run.objects.filter(pk__in=[run.pk for run in runs], state=State.SUCCEEDED)
    return done.count() == len(runs)


def sweep_until(predicate, timeout: float, every: float) -> bool:
    """Send the sweep job every `every` seconds (beat's schedule, faster) until done."""
    deadline, next_sweep = time.monotonic() + timeout, 0.0
    while not predicate():
        if time.monotonic() > deadline:
            return False
        if time.monotonic() >= next_sweep:
            with contextlib.suppress(OperationalError):
                sweep.delay()
            next_sweep = time.monotonic() + every
        time.sleep(0.2)
    return True


def run_scenario(fleet, ledger, chaos_redis, record_property, *, seconds: float,
                 lost_after: int, sweep_every: float, label: str):  # fmt: skip
    rescuer = fleet.nodename("rescuer")
    safe_a = send_to("victim_a", RECORD, ledger, seconds)
    unsafe = send_to("victim_a", RECORD_ONCE, ledger, seconds)
    safe_b = [send_to("victim_b", RECORD, ledger, seconds) for _ in range(2)]
    safe = [safe_a, *safe_b]
    wait_for(lambda: all(ledger.pid_running(r.task_id) for r in [*safe, unsafe]), timeout=60)
    rescuer_takes_the_victims_queues(fleet)
    signal_group(fleet, "lostB", signal.SIGSTOP)
    fleet.kill("lostA")
    cut_at, cut_clock = timezone.now(), time.monotonic()
    try:
        resumed = sweep_until(lambda: taken_over([*safe, unsafe], rescuer),
                              timeout=lost_after + 240, every=sweep_every)  # fmt: skip
        resumed_s = time.monotonic() - cut_clock
        settle(lambda: all_succeeded(safe), 120)
    finally:
        signal_group(fleet, "lostB", signal.SIGCONT)
    # lostB finishes both jobs late: wait until it has tried to store each outcome.
    settle(lambda: all(f"[{r.task_id}] succeeded" in log_of(fleet, "lostB") for r in safe_b), 120)
    counts = count_runs(label, safe, ledger)
    starts = ledger.counts("start")
    results = {
        r.task_id: r for r in TaskResult.objects.filter(task_id__in=[r.task_id for r in safe])
    }
    fresh = {run.pk: run for run in Run.objects.filter(pk__in=[r.pk for r in [*safe, unsafe]])}
    counts.extra.update(
        resumed_s=round(resumed_s, 1),
        first_start_after_cut_s=round(max(
            (fresh[r.pk].started_at - cut_at).total_seconds() for r in safe), 1),
        late_refused=log_of(fleet, "lostB").count("outcome not stored, the run was taken back"),
        unsafe_failed=int(fresh[unsafe.pk].state == State.FAILED),
        unsafe_ran_twice=int(starts[unsafe.task_id] > 1),
    )  # fmt: skip
    report(counts, record_property)
    assert resumed, describe([*safe, unsafe], ledger, chaos_redis.url)
    assert counts.lost == 0, describe(safe, ledger, chaos_redis.url)
    assert fresh[unsafe.pk].state == State.FAILED
    assert "not run again (not idempotent)" in fresh[unsafe.pk].note
    assert TaskResult.objects.get(task_id=unsafe.task_id).status == "FAILURE"
    assert starts[unsafe.task_id] == 1
    # lostB's late outcomes were refused: the rescuer's stand.
    assert counts.extra["late_refused"] == len(safe_b)
    assert all(fresh[r.pk].worker == rescuer for r in safe), describe(safe, ledger)
    assert all(results[r.task_id].worker == rescuer for r in safe)
    # Duplicates only of idempotent jobs: lostB's two late executions.
    assert counts.duplicated == sum(max(0, ledger.counts("done")[r.task_id] - 1) for r in safe)
    return counts, safe_a


@pytest.mark.chaos
def test_a_lost_and_a_cut_off_worker_s_runs_resume_elsewhere_and_late_writes_are_refused(
    start_process, chaos_redis, ledger, record_property
):
    fleet = start_fleet(start_process, chaos_redis, lost_after=4, visibility=25)
    counts, safe_a = run_scenario(
        fleet, ledger, chaos_redis, record_property,
        seconds=4, lost_after=4, sweep_every=1, label="lost worker (short)",
    )  # fmt: skip
    assert counts.extra["resumed_s"] < 60
    # Redis now hands lostA's original message to the rescuer: it is not run again.
    client = redis.Redis.from_url(chaos_redis.url)
    received = f"[{safe_a.task_id}] received"
    assert settle(lambda: log_of(fleet, "rescuer").count(received) >= 2
                  and client.hlen("unacked") == 0, 90)  # fmt: skip
    assert ledger.counts("start")[safe_a.task_id] == 2  # lostA's, then the rescuer's
    assert Run.objects.get(pk=safe_a.pk).state == State.SUCCEEDED


@pytest.mark.chaos
@pytest.mark.skipif(not os.environ.get("CHAOS_LONG"), reason="make chaos only (CHAOS_LONG=1)")
def test_at_the_default_threshold_and_sweep_schedule_runs_resume_within_two_minutes(
    start_process, chaos_redis, ledger, record_property
):
    fleet = start_fleet(start_process, chaos_redis, lost_after=45, visibility=2400)
    counts, _ = run_scenario(
        fleet, ledger, chaos_redis, record_property,
        seconds=10, lost_after=45, sweep_every=30, label="lost worker (defaults)",
    )  # fmt: skip
    assert counts.extra["resumed_s"] < 120
