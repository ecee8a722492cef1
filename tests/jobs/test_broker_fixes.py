"""apps.jobs.worker.broker_fixes: a worker that loses its Redis connection while it holds
unacknowledged jobs reconnects instead of exiting."""

import uuid

import redis
from kombu import Connection, Queue
from kombu.common import ignore_errors


def test_closing_a_collected_connection_that_holds_unacked_jobs_raises_no_attribute_error(
    redis_url,
):
    """Where Celery's consumer is after a broker failover broke its connection
    (Consumer.on_connection_error_after_connected, seen in a worker's traceback in
    issue 14's scenario 5): collect() dropped the transport's client, the default channel
    still holds an unacknowledged job, and close() runs under ignore_errors, which
    ignores connection errors only. The job stays unacknowledged, to be handed out again."""
    queue = f"test-lost-connection-{uuid.uuid4().hex[:8]}"
    connection = Connection(redis_url)
    connection.Producer().publish({"job": 1}, routing_key=queue, declare=[Queue(queue)])
    assert connection.default_channel.basic_get(queue, no_ack=False) is not None
    unacked = redis.Redis.from_url(redis_url).hlen("unacked")

    connection._do_close_transport()  # what collect() ends with
    ignore_errors(connection, connection.close)  # AttributeError before the fix

    assert redis.Redis.from_url(redis_url).hlen("unacked") == unacked
