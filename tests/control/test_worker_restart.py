"""Pause, rate limits and pool size with real `celery worker` processes, across a restart."""

from pathlib import Path

import pytest

from apps.control import actions
from apps.control.rules import ControlError
from apps.devstack import processes
from apps.jobs.models import Run, State
from project import celery_app
from tests.helpers import wait_for

from .helpers import ADD, active_queues, cli, send_adds

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres_pass,
              pytest.mark.slow]  # fmt: skip


def start_worker(start_process, queue: str, name: str, *extra: str):
    """A real `celery worker` for the queue, once it answers."""
    command = processes.worker_command(1, "-Q", queue, "-n", name,
                                       "--without-mingle", "--without-gossip", *extra)  # fmt: skip
    child = start_process(command)
    wait_for(lambda: active_queues(name) is not None or child.poll() is not None, timeout=60)
    assert child.poll() is None, Path(child.log_path).read_text()[-3000:]
    return child


def rate_limit_of(worker: str, task_name: str) -> str | None:
    """The task's rate limit in the worker's registry, as `inspect registered` shows it."""
    replies = celery_app.control.inspect(destination=[worker], timeout=1).registered("rate_limit")
    line = next(t for t in replies[worker] if t.split(" ")[0] == task_name)
    return line.split("rate_limit=")[1].rstrip("]") if "rate_limit=" in line else None


def pool_size(worker: str) -> int | None:
    replies = celery_app.control.inspect(destination=[worker], timeout=1).stats() or {}
    processes = (replies.get(worker) or {}).get("pool", {}).get("processes")
    return None if processes is None else len(processes)


def autoscaler(worker: str) -> dict:
    replies = celery_app.control.inspect(destination=[worker], timeout=1).stats() or {}
    return (replies.get(worker) or {}).get("autoscaler") or {}


def test_a_pause_and_a_rate_limit_survive_a_worker_restart_and_nothing_is_lost(
    start_process, test_queue
):
    """Also: autoscale bounds and a worker's refusal (grow with autoscale), then pool
    grow and shrink, each observed through `inspect stats`."""
    first = "ctl-first@localhost"
    worker = start_worker(start_process, test_queue, first, "--autoscale=2,1")
    assert test_queue in active_queues(first)

    actions.pause_queue(cli(), test_queue)
    wait_for(lambda: test_queue not in active_queues(first))
    actions.autoscale(cli(), first, 3, 1)
    wait_for(lambda: autoscaler(first).get("max") == 3)
    with pytest.raises(ControlError, match="refused pool_grow"):
        actions.grow_pool(cli(), first, 1)  # Celery: not with autoscale
    actions.set_rate_limit(cli(), ADD, "100/m")
    assert rate_limit_of(first, ADD) == "100/m" or wait_for(
        lambda: rate_limit_of(first, ADD) == "100/m"
    )
    runs = send_adds(test_queue, 3)

    actions.shutdown_worker(cli(), first)
    assert worker.wait(timeout=60) == 0
    second = "ctl-second@localhost"
    start_worker(start_process, test_queue, second)

    assert active_queues(second) == []  # started paused: consumes nothing
    assert rate_limit_of(second, ADD) == "100/m"
    assert {r.state for r in Run.objects.filter(pk__in=[r.pk for r in runs])} == {State.QUEUED}

    actions.grow_pool(cli(), second, 1)
    wait_for(lambda: pool_size(second) == 2)
    actions.shrink_pool(cli(), second, 1)
    wait_for(lambda: pool_size(second) == 1)

    actions.resume_queue(cli(), test_queue)
    wait_for(
        lambda: Run.objects.filter(pk__in=[r.pk for r in runs], state=State.SUCCEEDED).count() == 3
    )
    assert active_queues(second) == [test_queue]


def test_a_quick_pause_and_resume_while_the_worker_is_busy_leaves_it_consuming(
    start_process, test_queue
):
    """A solo worker runs a job in its event loop: the pause and the resume reach it
    only when the job ends, together, and Celery runs their consumer changes later."""
    name = "ctl-busy@localhost"
    start_worker(start_process, test_queue, name, "--pool=solo")
    countdown = celery_app.tasks["apps.demo.tasks.countdown"]
    busy = countdown.apply_async((3,), queue=test_queue)
    wait_for(lambda: Run.objects.filter(task_id=busy.id, state=State.PROGRESS).exists())

    actions.pause_queue(cli(), test_queue)
    actions.resume_queue(cli(), test_queue)

    wait_for(lambda: Run.objects.filter(task_id=busy.id, state=State.SUCCEEDED).exists())
    runs = send_adds(test_queue, 2)
    wait_for(
        lambda: Run.objects.filter(pk__in=[r.pk for r in runs], state=State.SUCCEEDED).count() == 2
    )
    assert active_queues(name) == [test_queue]
