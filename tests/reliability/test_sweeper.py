"""The pieces the chaos scenarios lean on, one at a time: stuck runs found and re-sent,
messages the broker lost sent again, orphaned states reconciled, and runs lost with a
worker failed when it comes back."""

from datetime import timedelta
from types import SimpleNamespace

import pytest
import redis
from django.utils import timezone
from django_celery_results.models import TaskResult

from apps.demo.tasks import add
from apps.jobs import sweeper
from apps.jobs.dispatch import record_and_send
from apps.jobs.models import Run, Source, State
from apps.jobs.worker.recording import fail_runs_lost_with_this_worker
from project import celery_app
from tests.helpers import make_run, wait_for

NOT_IDEMPOTENT = "apps.maintenance.tasks.run_command"
IDEMPOTENT = "apps.demo.tasks.add"


@pytest.mark.django_db
def test_a_run_queued_past_the_threshold_is_stuck_and_a_fresh_one_is_not(settings):
    settings.STUCK_QUEUED_AFTER_SECONDS = 600
    old = make_run(queued_at=timezone.now() - timedelta(seconds=601))
    make_run()
    assert list(sweeper.stuck_runs()) == [old]


@pytest.mark.django_db
def test_a_run_started_on_a_worker_that_is_gone_is_stuck():
    lost = make_run(state=State.STARTED, worker="gone@host")
    make_run(state=State.STARTED, worker="alive@host")
    assert list(sweeper.stuck_runs(alive_workers={"alive@host"})) == [lost]


@pytest.mark.django_db(transaction=True)
def test_a_stuck_run_re_sent_by_hand_runs_once_under_its_own_task_id(celery_worker):
    run = make_run(parameters={"x": 2, "y": 3}, queued_at=timezone.now() - timedelta(hours=1))
    assert sweeper.resend(run, alive=None)
    wait_for(lambda: Run.objects.filter(pk=run.pk, state=State.SUCCEEDED).exists())
    run.refresh_from_db()
    assert run.deliveries == 1 and "Re-sent by hand" in run.note
    assert TaskResult.objects.get(task_id=run.task_id).result == "5"


@pytest.mark.django_db
def test_a_finished_run_is_not_re_sent():
    run = make_run(state=State.SUCCEEDED)
    with pytest.raises(sweeper.NotStuck, match="it has already finished"):
        sweeper.resend(run, alive=None)
    assert Run.objects.get(pk=run.pk).state == State.SUCCEEDED


@pytest.mark.django_db
def test_a_run_whose_worker_answers_is_not_re_sent_and_keeps_its_execution():
    run = make_run(state=State.PROGRESS, worker="w1@host", attempt="abc123")
    with pytest.raises(sweeper.NotStuck, match="its worker w1@host is answering"):
        sweeper.resend(run, alive={"w1@host"})
    after = Run.objects.get(pk=run.pk)
    assert (after.state, after.attempt, after.note) == (State.PROGRESS, "abc123", "")


@pytest.mark.django_db
def test_reconcile_copies_a_final_state_a_lost_worker_could_not_record():
    run = make_run(state=State.STARTED)
    TaskResult.objects.create(task_id=run.task_id, status="FAILURE")
    assert sweeper.reconcile() == 1
    run.refresh_from_db()
    assert run.state == State.FAILED and run.finished_at is not None


@pytest.mark.django_db
def test_a_worker_coming_back_fails_the_unsafe_runs_it_was_running_and_only_those():
    unsafe = make_run(NOT_IDEMPOTENT, state=State.STARTED, worker="w1@host")
    redelivered_later = make_run(IDEMPOTENT, state=State.STARTED, worker="w1@host")
    elsewhere = make_run(NOT_IDEMPOTENT, state=State.STARTED, worker="w2@host")
    fail_runs_lost_with_this_worker(sender=SimpleNamespace(hostname="w1@host"))
    states = dict(Run.objects.values_list("pk", "state"))
    assert states == {unsafe.pk: State.FAILED, redelivered_later.pk: State.STARTED,
                      elsewhere.pk: State.STARTED}  # fmt: skip
    unsafe.refresh_from_db()
    assert "was lost while it ran" in unsafe.note
    assert TaskResult.objects.get(task_id=unsafe.task_id).status == "FAILURE"


def sent_a_while_ago(job_name: str = IDEMPOTENT, **parameters) -> Run:
    run = record_and_send(job_name, parameters, source=Source.SHELL, label="test")
    Run.objects.filter(pk=run.pk).update(queued_at=timezone.now() - timedelta(minutes=5))
    return run


@pytest.mark.django_db(transaction=True)
def test_a_message_a_dying_worker_took_from_redis_is_sent_again_and_runs_once(chaos_redis, fleet):
    run = sent_a_while_ago(x=2, y=3)
    broker = redis.Redis.from_url(chaos_redis.url)
    assert broker.rpop("celery")  # taken, as by a worker killed before it noted it unacked

    assert sweeper.resend_lost() == 1
    assert broker.llen("celery") == 1
    fleet.start("w1")
    wait_for(lambda: Run.objects.filter(pk=run.pk, state=State.SUCCEEDED).exists(), timeout=60)
    run.refresh_from_db()
    assert run.deliveries == 1 and "lost by the broker" in run.note
    assert TaskResult.objects.get(task_id=run.task_id).result == "5"
    assert sweeper.resend_lost() == 0


@pytest.mark.django_db(transaction=True)
def test_a_second_sweeper_that_also_found_it_lost_does_not_send_it_twice(chaos_redis, monkeypatch):
    run = sent_a_while_ago(x=2, y=3)
    broker = redis.Redis.from_url(chaos_redis.url)
    broker.rpop("celery")
    seen_by_the_second = Run.objects.get(pk=run.pk)
    assert sweeper.resend_lost(recheck_after=0) == 1

    # The second sweeper looked before the first sent it again: it saw it lost too.
    monkeypatch.setattr(sweeper, "_undelivered", lambda cutoff: [seen_by_the_second])
    monkeypatch.setattr(sweeper.broker_held, "held_task_ids", lambda queues: set())
    assert sweeper.resend_lost(recheck_after=0) == 0
    assert broker.llen("celery") == 1


@pytest.mark.django_db(transaction=True)
def test_a_message_waiting_in_its_queue_or_held_by_a_worker_is_not_sent_again(chaos_redis):
    waiting = sent_a_while_ago(x=1, y=1)
    assert sweeper.resend_lost(recheck_after=0) == 0

    with celery_app.connection_for_read() as connection:
        taken = connection.SimpleQueue("celery").get(timeout=5)  # unacknowledged
        assert taken.headers["id"] == waiting.task_id
        assert sweeper.resend_lost(recheck_after=0) == 0
        taken.ack()
    assert sweeper.resend_lost(recheck_after=0) == 1  # now it is gone


@pytest.mark.django_db(transaction=True)
def test_a_message_waiting_in_the_queue_its_job_routes_to_is_not_sent_again(
    chaos_redis, monkeypatch
):
    monkeypatch.setattr(add, "queue", "slow", raising=False)  # as @job(queue="slow") does
    monkeypatch.setattr(add, "_exec_options", None)  # Celery's cache of the above
    monkeypatch.setattr(sweeper, "queue_names", lambda: ["celery", "slow"])
    run = sent_a_while_ago(x=1, y=1)
    assert run.queue == ""  # the dispatcher records no queue: the task's own option routes
    assert redis.Redis.from_url(chaos_redis.url).llen("slow") == 1
    assert sweeper.resend_lost(recheck_after=0) == 0


@pytest.mark.django_db(transaction=True)
def test_a_lost_message_is_not_sent_again_if_the_job_is_unsafe_to_run_twice_or_young(
    chaos_redis,
):
    make_run(NOT_IDEMPOTENT, queued_at=timezone.now() - timedelta(minutes=5))
    make_run(IDEMPOTENT)  # queued just now: its message may still be on its way
    make_run(IDEMPOTENT, deliveries=1, queued_at=timezone.now() - timedelta(minutes=5))
    assert sweeper.resend_lost(recheck_after=0) == 0


@pytest.mark.django_db(transaction=True)
def test_a_message_the_workers_keep_dropping_is_sent_again_three_times_then_left_stuck(
    chaos_redis,
):
    run = make_run(IDEMPOTENT, queued_at=timezone.now() - timedelta(minutes=11))
    broker = redis.Redis.from_url(chaos_redis.url)
    for _ in range(3):
        assert sweeper.resend_lost(recheck_after=0) == 1
        broker.delete("celery")  # dropped again, as by a worker that does not know it
    assert sweeper.resend_lost(recheck_after=0) == 0
    assert run in sweeper.stuck_runs()


def test_kombus_restore_lock_expires_after_five_restore_intervals_not_its_default_300_s():
    # A worker killed while it holds the lock then pauses restores briefly, not 5 minutes.
    with celery_app.connection_for_read() as connection:
        channel = connection.default_channel
        assert channel.unacked_mutex_expire == 5 * channel.unacked_restore_interval
        assert channel.unacked_mutex_expire <= 50 < 300


@pytest.mark.django_db(transaction=True)
def test_with_redis_unreachable_the_sweeper_sends_nothing_again_and_goes_on(chaos_redis):
    make_run(IDEMPOTENT, queued_at=timezone.now() - timedelta(minutes=5))
    chaos_redis.stop()
    assert sweeper.resend_lost(recheck_after=0) == 0
