"""The sweeper's judgement of lost workers, one piece at a time (the real processes are
in test_lost_worker_hosts.py): who is lost, what is sent again, what is failed."""

from datetime import timedelta

import pytest
from django.utils import timezone
from django_celery_results.models import TaskResult

from apps.jobs import liveness, sweeper
from apps.jobs.models import Run, State
from apps.ops import heartbeat
from apps.ops.models import Heartbeat
from tests.helpers import make_run

pytestmark = pytest.mark.django_db

IDEMPOTENT = "apps.demo.tasks.add"
NOT_IDEMPOTENT = "apps.maintenance.tasks.run_command"


@pytest.fixture(autouse=True)
def _threshold(settings):
    settings.WORKER_LOST_AFTER_SECONDS = 45


def make_held_run(job_name: str = IDEMPOTENT, *, worker: str = "gone@host", ago: float = 60):
    started = timezone.now() - timedelta(seconds=ago)
    return make_run(job_name, state=State.STARTED, worker=worker, started_at=started,
                    queued_at=started, attempt="first", deliveries=1)  # fmt: skip


def seen(name: str, ago: float) -> None:
    heartbeat.record(heartbeat.WORKER_PREFIX + name)
    Heartbeat.objects.filter(name=heartbeat.WORKER_PREFIX + name).update(
        seen_at=timezone.now() - timedelta(seconds=ago)
    )


def test_a_silent_worker_holding_a_run_started_past_the_threshold_is_lost():
    make_held_run(ago=60)
    make_held_run(worker="alive@host", ago=600)
    assert liveness.lost_workers({"alive@host"}) == ["gone@host"]


def test_a_worker_is_not_lost_while_its_last_answer_is_recent():
    make_held_run(ago=600)
    seen("gone@host", ago=20)
    assert liveness.lost_workers(set()) == []
    seen("gone@host", ago=46)
    assert liveness.lost_workers(set()) == ["gone@host"]


def test_a_worker_that_just_claimed_a_run_is_not_lost_yet():
    make_held_run(ago=10)
    assert liveness.lost_workers(set()) == []


def test_a_lost_workers_idempotent_run_is_sent_again_and_its_unsafe_run_failed():
    safe, unsafe = make_held_run(), make_held_run(NOT_IDEMPOTENT)
    assert sweeper.recover_lost_workers(answering=set()) == {"resent": 1, "failed": 1}
    safe.refresh_from_db()
    unsafe.refresh_from_db()
    assert safe.state == State.QUEUED and safe.send_attempts == 1
    assert safe.note == "Sent again: its worker gone@host answered no ping for 45 s while it ran."
    assert safe.attempt == "" and unsafe.attempt == ""
    assert unsafe.state == State.FAILED and unsafe.finished_at is not None
    assert "not run again (not idempotent)" in unsafe.note
    assert TaskResult.objects.get(task_id=unsafe.task_id).status == "FAILURE"


def test_a_second_sweep_takes_nothing_back_twice():
    make_held_run()
    assert sweeper.recover_lost_workers(answering=set())["resent"] == 1
    assert sweeper.recover_lost_workers(answering=set()) == {"resent": 0, "failed": 0}


def test_with_the_threshold_at_zero_no_worker_is_ever_lost(settings):
    settings.WORKER_LOST_AFTER_SECONDS = 0
    run = make_held_run(ago=10_000)
    assert sweeper.recover_lost_workers(answering=set()) == {"resent": 0, "failed": 0}
    assert Run.objects.get(pk=run.pk).state == State.STARTED


def test_a_run_of_a_job_unknown_here_is_left_for_a_sweeper_that_knows_it(caplog):
    run = make_held_run("somewhere.else.job")
    assert sweeper.recover_lost_workers(answering=set()) == {"resent": 0, "failed": 0}
    assert Run.objects.get(pk=run.pk).state == State.STARTED
    assert "job unknown to this process" in caplog.text


def test_with_the_broker_unreachable_no_worker_is_judged(monkeypatch):
    from apps.jobs import inspect

    monkeypatch.setattr(inspect, "ping_workers", lambda: None)
    run = make_held_run(ago=10_000)
    assert sweeper.recover_lost_workers() == {"resent": 0, "failed": 0}
    assert Run.objects.get(pk=run.pk).state == State.STARTED
