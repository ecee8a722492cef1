"""Priority, queue and run_after become Celery's priority, queue and eta, and survive a
broker outage: the sweeper sends a waiting run with them."""

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import redis
from django.utils import timezone
from django_tasks.exceptions import InvalidTaskError

from apps.demo.tasks_api.tasks import greet, tidy_up
from apps.devstack import processes
from apps.djtasks.models import SendOptions
from apps.djtasks.options import celery_priority
from apps.jobs.models import Run, State
from apps.jobs.sweeper import send_pending
from project import celery_app
from tests.helpers import point_celery_at, wait_for

IDLE = "djtasks-idle"  # a queue no worker consumes
CONSUMED = "djtasks-consumed"  # one the test worker is told to consume
FORGET = "djtasks-forget"  # another (a queue is consumed by one test only)
SEP = "\x06\x16"  # kombu's separator between a queue's name and its priority level


@pytest.fixture
def idle_queue(settings, redis_url):
    settings.TASKS = {
        "default": {**settings.TASKS["default"], "QUEUES": ["default", IDLE, CONSUMED, FORGET]}
    }
    client = redis.Redis.from_url(redis_url)
    yield client
    client.delete(*(f"{queue}{SEP}{level}" for queue in (IDLE, CONSUMED, FORGET)
                    for level in (3, 6, 9)), IDLE, CONSUMED, FORGET)  # fmt: skip


def messages(client, key: str) -> list[dict]:
    return [json.loads(raw) for raw in client.lrange(key, 0, -1)]


def ids(client, key: str) -> list[str]:
    """Task ids in the order a worker takes them (kombu pushes left, pops right)."""
    return [message["headers"]["id"] for message in reversed(messages(client, key))]


@pytest.mark.parametrize(
    ("priority", "redis_level", "rabbitmq_priority"),
    [(100, None, 9), (1, None, 1), (0, None, None), (-1, 3, None), (-33, 3, None),
     (-34, 6, None), (-66, 6, None), (-67, 9, None), (-100, 9, None)],
)  # fmt: skip
def test_tasks_api_priorities_map_to_celery_priorities_per_broker(
    priority, redis_level, rabbitmq_priority
):
    assert celery_priority(priority) == redis_level
    celery_app.conf.broker_url, redis_url = "amqp://guest@127.0.0.1//", celery_app.conf.broker_url
    try:
        assert celery_priority(priority) == rabbitmq_priority
    finally:
        celery_app.conf.broker_url = redis_url


@pytest.mark.django_db(transaction=True)
def test_each_priority_lands_in_its_redis_priority_level_of_the_named_queue(idle_queue):
    on_idle = greet.using(queue_name=IDLE)
    default = on_idle.enqueue("default")
    lowest = on_idle.using(priority=-100).enqueue("lowest")
    low = on_idle.using(priority=-50).enqueue("low")
    declared_low = tidy_up.using(queue_name=IDLE).enqueue(days=1)  # @task(priority=-50)
    assert ids(idle_queue, IDLE) == [default.id]
    assert ids(idle_queue, f"{IDLE}{SEP}6") == [low.id, declared_low.id]
    assert ids(idle_queue, f"{IDLE}{SEP}9") == [lowest.id]
    assert Run.objects.get(task_id=lowest.id).queue == IDLE


@pytest.mark.django_db(transaction=True)
def test_a_task_on_a_named_queue_runs_on_a_worker_consuming_that_queue(idle_queue, celery_worker):
    result = greet.using(queue_name=CONSUMED).enqueue("queue")
    assert ids(idle_queue, CONSUMED) == [result.id]
    control = {"destination": [celery_worker.hostname], "reply": True}
    celery_app.control.add_consumer(CONSUMED, **control)
    try:
        done = wait_for(lambda: (r := greet.get_result(result.id)).is_finished and r)
    finally:
        celery_app.control.cancel_consumer(CONSUMED, **control)
    assert done.return_value == "Hello, queue!"


@pytest.mark.django_db
def test_a_queue_outside_the_backends_queues_is_refused_before_anything_is_recorded():
    with pytest.raises(InvalidTaskError, match="Queue 'elsewhere' is not valid"):
        greet.using(queue_name="elsewhere").enqueue("x")
    assert not Run.objects.exists()


@pytest.mark.django_db
def test_run_after_must_be_aware():
    with pytest.raises(InvalidTaskError, match="aware"):
        greet.using(run_after=timezone.now().replace(tzinfo=None)).enqueue("x")
    assert not Run.objects.exists()


OUT_OF_RANGE = [
    datetime(9999, 12, 31, tzinfo=UTC),
    datetime(1, 1, 1, tzinfo=UTC),
    datetime(2100, 1, 1, 1, 30, tzinfo=ZoneInfo("Europe/Paris")),  # 00:30 UTC
]


@pytest.mark.django_db
@pytest.mark.parametrize("run_after", OUT_OF_RANGE)
def test_a_run_after_outside_the_sites_dates_is_refused_before_anything_is_recorded(run_after):
    message = "is out of range: choose a date between 2000-01-01 and 2099-12-31"
    with pytest.raises(InvalidTaskError, match=f"^run_after: .* {message}$"):
        greet.using(run_after=run_after).enqueue("x")
    assert not Run.objects.exists() and not SendOptions.objects.exists()


@pytest.mark.django_db
def test_a_run_after_in_the_hour_its_zone_skips_is_refused_saying_so():
    in_the_gap = datetime(2027, 3, 28, 2, 30, tzinfo=ZoneInfo("Europe/Paris"))
    with pytest.raises(InvalidTaskError, match="2027-03-28 02:30 does not exist in Europe/Paris"):
        greet.using(run_after=in_the_gap).enqueue("x")
    assert not Run.objects.exists()


@pytest.mark.django_db
def test_a_run_after_in_the_hour_its_zone_has_twice_is_the_first_of_the_two():
    twice = datetime(2027, 10, 31, 2, 30, tzinfo=ZoneInfo("Europe/Paris"))
    greet.using(run_after=twice).enqueue("x")
    assert SendOptions.objects.get().eta == datetime(2027, 10, 31, 0, 30, tzinfo=UTC)


@pytest.fixture
def broker_down(redis_url):
    point_celery_at(f"redis://127.0.0.1:{processes.free_port()}/0")
    yield
    point_celery_at(redis_url)


@pytest.mark.django_db(transaction=True)
def test_enqueued_while_redis_is_down_it_waits_then_is_sent_once_with_its_priority_and_eta(
    broker_down, idle_queue, redis_url
):
    not_before = timezone.now() + timedelta(hours=1)
    result = greet.using(queue_name=IDLE, priority=-100, run_after=not_before).enqueue("x")
    assert Run.objects.get(task_id=result.id).state == State.PENDING_SEND
    assert send_pending(older_than=timedelta(0)) == 0
    point_celery_at(redis_url)
    assert send_pending(older_than=timedelta(0)) == 1
    assert send_pending(older_than=timedelta(0)) == 0
    (message,) = messages(idle_queue, f"{IDLE}{SEP}9")
    assert message["headers"]["id"] == result.id
    assert message["headers"]["eta"] == not_before.isoformat()
    assert idle_queue.llen(IDLE) == 0
    assert Run.objects.get(task_id=result.id).state == State.QUEUED


@pytest.mark.django_db(transaction=True)
def test_enqueued_while_redis_is_down_it_runs_exactly_once_when_redis_is_back(
    broker_down, redis_url, celery_worker
):
    result = greet.enqueue("outage")
    assert greet.get_result(result.id).status == "READY"
    point_celery_at(redis_url)
    assert send_pending(older_than=timedelta(0)) == 1
    done = wait_for(lambda: (r := greet.get_result(result.id)).is_finished and r)
    assert done.return_value == "Hello, outage!"
    assert send_pending(older_than=timedelta(0)) == 0
    assert Run.objects.get(task_id=result.id).deliveries == 1


@pytest.mark.django_db(transaction=True)
def test_the_worker_forgets_the_stored_send_options_when_the_run_ends(idle_queue, celery_worker):
    result = greet.using(queue_name=FORGET, priority=-10).enqueue("prio")
    assert SendOptions.objects.filter(task_id=result.id, priority=3).exists()
    control = {"destination": [celery_worker.hostname], "reply": True}
    celery_app.control.add_consumer(FORGET, **control)
    try:
        wait_for(lambda: greet.get_result(result.id).is_finished)
    finally:
        celery_app.control.cancel_consumer(FORGET, **control)
    wait_for(lambda: not SendOptions.objects.filter(task_id=result.id).exists())
