"""The broker accepts JSON only: a pickled message is refused by the worker, not run.

A pickle is code: a worker that unpickled a message from anyone who can write to
Redis would run anything they liked. CELERY_ACCEPT_CONTENT = ["json"] makes the worker
refuse and discard it; apps.jobs.worker.recording logs the refusal at ERROR with the task name,
id and origin the message claimed, which is where an operator sees it.
"""

import logging
import pickle
import uuid

import pytest
from django_celery_results.models import TaskResult
from kombu import Connection, Exchange, Queue

from apps.demo.tasks import add
from apps.jobs.models import Run

pytestmark = pytest.mark.django_db(transaction=True)


def publish_pickled_add(broker_url: str, x: int, y: int) -> str:
    """A message as Celery's protocol 2 would send `add(x, y)`, but pickled."""
    task_id = str(uuid.uuid4())
    headers = {
        "lang": "py", "task": "apps.demo.tasks.add", "id": task_id, "root_id": task_id,
        "parent_id": None, "group": None, "retries": 0, "eta": None, "expires": None,
        "timelimit": [None, None], "argsrepr": repr((x, y)), "kwargsrepr": "{}",
        "origin": "attacker@example", "ignore_result": False,
    }  # fmt: skip
    body = ((x, y), {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None})
    queue = Queue("celery", Exchange("celery", "direct"), routing_key="celery")
    with Connection(broker_url) as connection:
        connection.Producer().publish(
            body, exchange=queue.exchange, routing_key="celery", declare=[queue],
            serializer="pickle", headers=headers, correlation_id=task_id,
        )  # fmt: skip
    return task_id


def test_a_pickled_message_is_refused_logged_and_never_run(redis_url, celery_worker, caplog):
    caplog.set_level(logging.ERROR, logger="apps.jobs.worker.recording")
    task_id = publish_pickled_add(redis_url, 20, 22)
    # A JSON message sent after it: once it ran, the worker has dealt with the pickle.
    assert add.delay(1, 1).get(timeout=30, interval=0.02) == 2
    assert not TaskResult.objects.filter(task_id=task_id).exists()
    assert not Run.objects.filter(task_id=task_id).exists()
    (refused,) = [r.getMessage() for r in caplog.records if task_id in r.getMessage()]
    assert "apps.demo.tasks.add" in refused and "attacker@example" in refused
    assert "Refusing to deserialize untrusted content of type pickle" in refused


def test_a_refused_message_does_not_stay_in_the_queue(redis_url, celery_worker):
    publish_pickled_add(redis_url, 1, 2)
    add.delay(1, 1).get(timeout=30, interval=0.02)
    with Connection(redis_url) as connection:
        assert connection.default_channel.client.llen("celery") == 0


def test_pickle_is_not_an_accepted_content_type(settings):
    assert settings.CELERY_ACCEPT_CONTENT == ["json"]
    assert settings.CELERY_RESULT_ACCEPT_CONTENT == ["json"]
    assert pickle.dumps(1)  # the test itself may pickle: only the worker must refuse
