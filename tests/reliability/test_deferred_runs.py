"""A run whose start was deferred (a Tasks API `run_after`, Celery's `countdown` or
`eta`) is held by a worker until it is due: it is not stuck, not re-sent by hand and not
sent again by the sweeper until it has waited past its due time, as a run with no
deferred start is after it was queued."""

import json
from datetime import timedelta

import pytest
import redis
from django.urls import reverse
from django.utils import timezone
from kombu.exceptions import OperationalError

from apps.demo.tasks import add
from apps.demo.tasks_api.tasks import greet
from apps.jobs import sweeper
from apps.jobs.models import Run, State
from tests.helpers import make_run
from tests.ops.makers import given_snapshot

pytestmark = pytest.mark.django_db(transaction=True)


def ago(seconds: float):
    return timezone.now() - timedelta(seconds=seconds)


def enqueued_for_an_hour_from_now() -> Run:
    """`greet.using(run_after=now + 1 h).enqueue(...)`, as it looks 10 minutes later."""
    result = greet.using(run_after=timezone.now() + timedelta(hours=1)).enqueue("later")
    Run.objects.filter(task_id=result.id).update(queued_at=ago(601))
    return Run.objects.get(task_id=result.id)


def said(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def test_a_run_deferred_for_an_hour_is_not_stuck_ten_minutes_after_it_was_enqueued(
    chaos_redis, root_client, settings
):
    settings.STUCK_QUEUED_AFTER_SECONDS = 600
    given_snapshot()
    deferred = enqueued_for_an_hour_from_now()
    plain = make_run(queued_at=ago(601), parameters={"x": 1, "y": 2})
    assert list(sweeper.stuck_runs()) == [plain]

    page = root_client.get(reverse("jobs:run", args=[deferred.pk]))
    assert page.context["stuck"] is False
    assert reverse("jobs:resend", args=[deferred.pk]) not in page.content.decode()
    stuck_list = root_client.get("/dashboard/stuck/").content.decode()
    assert plain.get_absolute_url() in stuck_list
    assert deferred.get_absolute_url() not in stuck_list


def test_resend_of_a_deferred_run_is_refused_with_its_reason_and_sends_nothing(
    chaos_redis, root_client
):
    given_snapshot()
    deferred = enqueued_for_an_hour_from_now()
    broker = redis.Redis.from_url(chaos_redis.url)
    response = root_client.post(reverse("jobs:resend", args=[deferred.pk]), follow=True)
    (reason,) = said(response)
    assert reason.startswith("Not sent again: it is deferred until ")
    assert reason.endswith(": a worker holds it until then.")
    assert broker.llen("celery") == 1  # its one message
    after = Run.objects.get(pk=deferred.pk)
    assert (after.send_attempts, after.note) == (0, "")


def test_a_deferred_run_is_stuck_once_it_has_waited_past_its_due_time(chaos_redis, settings):
    settings.STUCK_QUEUED_AFTER_SECONDS = 600
    deferred = enqueued_for_an_hour_from_now()
    Run.objects.filter(pk=deferred.pk).update(eta=ago(599), queued_at=ago(3600))
    assert not sweeper.stuck_runs().exists()
    deferred.refresh_from_db()
    with pytest.raises(sweeper.NotStuck, match="it has been due for less than 600 s"):
        sweeper.resend(deferred, alive=None)
    Run.objects.filter(pk=deferred.pk).update(eta=ago(601))
    assert list(sweeper.stuck_runs()) == [deferred]


def test_a_countdown_sent_from_a_shell_is_recorded_with_its_due_time_and_not_stuck(
    chaos_redis, settings
):
    settings.STUCK_QUEUED_AFTER_SECONDS = 600
    before = timezone.now()
    result = add.apply_async((1, 2), countdown=3600)
    run = Run.objects.get(task_id=result.id)
    assert before + timedelta(hours=1) <= run.eta <= timezone.now() + timedelta(hours=1)
    Run.objects.filter(pk=run.pk).update(queued_at=ago(601))
    assert not sweeper.stuck_runs().exists()


def test_the_sweeper_does_not_send_a_deferred_run_again_before_it_is_due(chaos_redis, settings):
    """Its message lost by Redis (taken by a worker killed before it noted it unacked):
    sent again only once it has been due for SWEEP_LOST_AFTER_SECONDS."""
    settings.SWEEP_LOST_AFTER_SECONDS = 60
    deferred = enqueued_for_an_hour_from_now()
    broker = redis.Redis.from_url(chaos_redis.url)
    assert broker.rpop("celery")
    assert sweeper.resend_lost(recheck_after=0) == 0
    assert broker.llen("celery") == 0
    Run.objects.filter(pk=deferred.pk).update(eta=ago(59))
    assert sweeper.resend_lost(recheck_after=0) == 0
    Run.objects.filter(pk=deferred.pk).update(eta=ago(61))
    assert sweeper.resend_lost(recheck_after=0) == 1
    assert broker.llen("celery") == 1


def test_a_countdown_sent_while_redis_was_down_is_sent_by_the_sweeper_still_deferred(
    chaos_redis,
):
    chaos_redis.stop()
    with pytest.raises(OperationalError):
        add.apply_async((1, 2), countdown=3600)
    (run,) = Run.objects.all()
    assert run.state == State.PENDING_SEND
    chaos_redis.start()
    assert sweeper.send_pending(older_than=timedelta(0)) == 1
    (raw,) = redis.Redis.from_url(chaos_redis.url).lrange("celery", 0, -1)
    message = json.loads(raw)
    assert message["headers"]["id"] == run.task_id
    assert message["headers"]["eta"] == run.eta.isoformat()
