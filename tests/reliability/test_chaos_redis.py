"""The chaos suite's own Redis (the `chaos_redis` fixture): once the test process's Celery
app points at it, remote-control broadcasts go there too, even after the session's
in-process worker has answered one on the session's Redis (the lost-worker scenario's
`add_consumer` went to the session's Redis after the PostgreSQL pass, and its rescuer
never took the victims' queues)."""

import base64
import json

import pytest
import redis

from project import celery_app
from tests.helpers import point_celery_at, wait_for

# The session worker stores its ping task's result: it needs the test database.
pytestmark = [pytest.mark.once, pytest.mark.django_db(transaction=True)]

NOBODY = "nobody@chaos-redis-test"


def destination_of(message: dict) -> list[str] | None:
    """The destination of a remote-control broadcast heard on Redis's pub/sub."""
    envelope = json.loads(message["data"])
    body = envelope["body"]
    if envelope["properties"].get("body_encoding") == "base64":
        body = base64.b64decode(body)
    return json.loads(body).get("destination")


def test_a_broadcast_reaches_the_chaos_redis_after_the_session_worker_answered_one(
    celery_worker, chaos_redis, redis_url
):
    point_celery_at(redis_url)
    assert celery_app.control.ping(destination=[celery_worker.hostname], timeout=10)
    point_celery_at(chaos_redis.url)
    listener = redis.Redis.from_url(chaos_redis.url).pubsub()
    listener.psubscribe("*")
    assert wait_for(lambda: listener.get_message(timeout=0.1), timeout=10)["type"] == "psubscribe"
    try:
        celery_app.control.broadcast("ping", destination=[NOBODY], reply=False)
        heard = wait_for(lambda: listener.get_message(timeout=0.1), timeout=10)
        assert destination_of(heard) == [NOBODY]
    finally:
        listener.close()
