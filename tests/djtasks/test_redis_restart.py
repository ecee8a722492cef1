"""A Tasks API enqueue while Redis is really stopped: recorded, then sent exactly once by
the sweeper when Redis is back, and run once by a worker process."""

from datetime import timedelta
from pathlib import Path

import pytest

from apps.demo.tasks_api.tasks import greet
from apps.devstack import processes
from apps.jobs.models import Run, State
from apps.jobs.sweeper import send_pending
from tests.helpers import point_celery_at, wait_for
from tests.reliability.stack import RedisServer

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def own_redis(tmp_path, redis_url):
    server = RedisServer(tmp_path / "redis")
    server.start()
    point_celery_at(server.url)
    yield server
    point_celery_at(redis_url)
    server.stop()


def start_worker(start_process, url: str):
    command = processes.worker_command(1, "-n", "djtasks@%h", "--without-gossip",
                                       "--without-mingle")  # fmt: skip
    worker = start_process(command, CELERY_BROKER_URL=url)
    wait_for(lambda: " ready." in Path(worker.log_path).read_text(errors="replace"), timeout=90)
    return worker


def test_enqueued_while_redis_is_stopped_it_is_sent_once_when_redis_is_back_and_runs_once(
    own_redis, start_process
):
    start_worker(start_process, own_redis.url)
    own_redis.stop()
    result = greet.enqueue("restart")
    assert Run.objects.get(task_id=result.id).state == State.PENDING_SEND
    assert send_pending(older_than=timedelta(0)) == 0  # still down: nothing sent
    own_redis.start()
    assert send_pending(older_than=timedelta(0)) == 1
    assert send_pending(older_than=timedelta(0)) == 0
    done = wait_for(lambda: (r := greet.get_result(result.id)).is_finished and r, timeout=60)
    assert done.return_value == "Hello, restart!"
    run = Run.objects.get(task_id=result.id)
    # Two sends tried (one while Redis was down), one delivered.
    assert (run.deliveries, run.send_attempts, run.state) == (1, 2, State.SUCCEEDED)
