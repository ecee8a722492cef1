"""Overlap guard: a schedule with the skip policy never runs twice at once, and a run
that died mid-way stops blocking once its lock expires."""

import itertools
import time
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from apps.devstack import processes
from apps.jobs.models import Run, State
from apps.scheduling import overlap
from apps.scheduling.lease import redis_client
from apps.scheduling.models import Overlap, ScheduleOptions
from apps.scheduling.schedulers import run_id
from tests.helpers import make_run, wait_for

from .beat_helpers import make_queue_name, make_schedule, make_scheduler, queued_messages

TASK = "apps.demo.tasks.countdown"


def make_running_run(schedule: str, *, lock_for: float | None = 30, **kw) -> Run:
    """A started run of `schedule`, holding the schedule's lock for `lock_for` seconds."""
    kw.setdefault("state", State.STARTED)
    kw.setdefault("started_at", timezone.now())
    run = make_run(TASK, schedule_name=schedule, **kw)
    if lock_for:
        overlap.hold(schedule, run.task_id, lock_for)
    return run


@pytest.fixture
def schedule() -> str:
    return f"overlap-{uuid.uuid4().hex[:8]}"


@pytest.mark.django_db
def test_a_schedule_nobody_locked_is_not_running(schedule):
    assert overlap.running_run(schedule, TASK) is None


@pytest.mark.django_db
def test_a_locked_schedule_with_an_active_run_is_running(schedule):
    run = make_running_run(schedule)
    assert overlap.running_run(schedule, TASK) == run


@pytest.mark.django_db
def test_a_queued_run_counts_as_running_too(schedule):
    run = make_running_run(schedule, state=State.QUEUED, started_at=None)
    assert overlap.running_run(schedule, TASK) == run


@pytest.mark.django_db
def test_a_finished_run_does_not_block_though_its_lock_remains(schedule):
    make_running_run(schedule, state=State.SUCCEEDED, finished_at=timezone.now())
    assert overlap.running_run(schedule, TASK) is None


@pytest.mark.django_db
def test_the_lock_of_a_run_killed_mid_way_expires(schedule):
    make_running_run(schedule, lock_for=0.5)  # its worker died: "started" forever
    assert overlap.running_run(schedule, TASK) is not None
    time.sleep(0.6)
    assert overlap.running_run(schedule, TASK) is None


@pytest.mark.django_db
def test_a_starting_run_renews_the_lock_only_if_it_holds_it(schedule):
    run = make_running_run(schedule, lock_for=1)
    overlap.refresh(schedule, "some-other-run", 30)
    assert redis_client().pttl(overlap.lock_key(schedule)) <= 1000
    overlap.refresh(schedule, run.task_id, 30)
    assert redis_client().pttl(overlap.lock_key(schedule)) > 1000


def test_a_run_of_a_schedule_without_the_skip_policy_takes_no_lock(schedule):
    overlap.refresh(schedule, "a-run", 30)
    assert not redis_client().exists(overlap.lock_key(schedule))


@pytest.mark.django_db
def test_releasing_drops_only_the_lock_of_that_run(schedule):
    run = make_running_run(schedule)
    overlap.release(schedule, "some-other-run")
    assert overlap.running_run(schedule, TASK) == run
    overlap.release(schedule, run.task_id)
    assert overlap.running_run(schedule, TASK) is None


@pytest.mark.django_db
def test_without_redis_a_run_older_than_the_time_limit_counts_as_dead(schedule, monkeypatch):
    monkeypatch.setattr(overlap, "redis_client", lambda: None)
    long_ago = timezone.now() - timedelta(seconds=overlap.hard_time_limit(TASK) + 1)
    make_running_run(schedule, lock_for=None, started_at=long_ago)
    assert overlap.running_run(schedule, TASK) is None
    run = make_running_run(schedule, lock_for=None)
    assert overlap.running_run(schedule, TASK) == run


@pytest.mark.django_db
def test_beat_records_a_skipped_run_with_the_reason_instead_of_sending_it(schedule):
    queue = make_queue_name()
    task = make_schedule(schedule, due_in=-1, queue=queue, task=TASK, kwargs='{"seconds": 1}')
    ScheduleOptions.objects.create(periodic_task=task, overlap=Overlap.SKIP)
    previous = make_running_run(schedule)
    beat = make_scheduler()
    try:
        beat.tick()
    finally:
        beat.close()
    assert queued_messages(queue) == []
    skipped = Run.objects.get(task_id=run_id(schedule, task.last_run_at))
    assert skipped.state == State.SKIPPED
    assert skipped.note == f"previous run {previous.pk} still running"
    task.refresh_from_db()
    assert task.total_run_count == 1  # the due run is done with, not retried


@pytest.mark.django_db
def test_beat_takes_the_lock_for_the_run_it_sends(schedule):
    queue = make_queue_name()
    task = make_schedule(schedule, due_in=-1, queue=queue, task=TASK, kwargs='{"seconds": 1}')
    ScheduleOptions.objects.create(periodic_task=task, overlap=Overlap.SKIP)
    beat = make_scheduler()
    try:
        beat.tick()
    finally:
        beat.close()
    [message] = queued_messages(queue)
    assert overlap.running_run(schedule, TASK).task_id == message["headers"]["id"]


@pytest.mark.slow
@pytest.mark.postgres_pass  # beat's skip and lock queries run on both databases just above
@pytest.mark.django_db(transaction=True)
def test_a_long_run_makes_beat_skip_the_next_ones_and_runs_never_overlap(
    schedule, celery_worker, start_process
):
    every_second, _ = IntervalSchedule.objects.get_or_create(every=1, period="seconds")
    task = PeriodicTask.objects.create(
        name=schedule, task=TASK, interval=every_second, kwargs='{"seconds": 3}'
    )
    ScheduleOptions.objects.create(periodic_task=task, overlap=Overlap.SKIP)
    start_process(processes.beat_command("--max-interval=1"))
    runs = Run.objects.filter(schedule_name=schedule)
    skipped = runs.filter(state=State.SKIPPED)
    # Wait for each condition asserted below, not for a proxy of it.
    wait_for(lambda: runs.filter(state=State.SUCCEEDED).count() >= 2 and skipped.count() >= 2,
             timeout=45)  # fmt: skip
    PeriodicTask.objects.filter(pk=task.pk).update(enabled=False)

    assert all(note.startswith("previous run ") for note in skipped.values_list("note", flat=True))
    ran = runs.filter(state=State.SUCCEEDED).order_by("started_at")
    for earlier, later in itertools.pairwise(ran):
        assert later.started_at >= earlier.finished_at, "two runs of the schedule overlapped"
    # The worker lets go of the lock when a run ends (a run sent before the schedule was
    # disabled may still be going): wait for that, within a run's length and then some.
    wait_for(lambda: overlap.running_run(schedule, TASK) is None, timeout=30)
