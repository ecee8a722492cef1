"""apps.jobs.redis_clients: kombu's Redis channel builds one redis-py client for its
commands, not one per publish or per acknowledgement (issue 15: each cost ~0.1 ms)."""

import uuid

import pytest
import redis
from kombu import Connection, Queue

pytestmark = pytest.mark.once


@pytest.fixture
def clients_built(monkeypatch) -> list[int]:
    """Counts every redis-py client built from now on."""
    built: list[int] = []
    init = redis.Redis.__init__

    def counted(self, *args, **kwargs):
        built.append(1)
        init(self, *args, **kwargs)

    monkeypatch.setattr(redis.Redis, "__init__", counted)
    return built


def make_queue(connection: Connection) -> Queue:
    queue = Queue(f"test-clients-{uuid.uuid4().hex[:8]}")
    queue(connection.default_channel).declare()
    return queue


def test_publishing_many_messages_builds_one_client_not_one_per_message(redis_url, clients_built):
    with Connection(redis_url) as connection:
        queue = make_queue(connection)
        producer = connection.Producer()
        for number in range(20):
            producer.publish({"n": number}, routing_key=queue.name, declare=[])
        built = len(clients_built)

        assert redis.Redis.from_url(redis_url).llen(queue.name) == 20
    assert built <= 2  # the channel's BRPOP client and its command client


def test_taking_and_acknowledging_messages_builds_no_client_per_message(redis_url, clients_built):
    with Connection(redis_url) as connection:
        queue = make_queue(connection)
        producer = connection.Producer()
        for number in range(10):
            producer.publish({"n": number}, routing_key=queue.name, declare=[])
        before = len(clients_built)
        tags = []
        for _ in range(10):
            message = connection.default_channel.basic_get(queue.name, no_ack=False)
            message.ack()
            tags.append(message.delivery_tag)
        built = len(clients_built) - before

        assert built == 0
        assert not any(redis.Redis.from_url(redis_url).hexists("unacked", tag) for tag in tags)


def test_a_channel_whose_pool_was_dropped_publishes_through_a_new_one(redis_url):
    """kombu drops a channel's pools when its connection is lost; the client it kept
    must not keep using the old pool."""
    with Connection(redis_url) as connection:
        queue = make_queue(connection)
        channel = connection.default_channel
        connection.Producer().publish({"n": 1}, routing_key=queue.name, declare=[])
        old_pool = channel.pool

        channel._disconnect_pools()
        connection.Producer().publish({"n": 2}, routing_key=queue.name, declare=[])

        assert channel.pool is not old_pool
        assert channel._create_client().connection_pool is channel.pool
        assert redis.Redis.from_url(redis_url).llen(queue.name) == 2
