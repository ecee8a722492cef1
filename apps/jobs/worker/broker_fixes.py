"""A worker must survive losing its Redis connection while it holds unacknowledged jobs.

Celery 5.7's consumer, when its broker connection breaks, first `collect()`s the
connection (which drops the transport's client) and then closes it. Closing the default
channel gives its unacknowledged messages back through a new connection pool, built
from that client, now None: an AttributeError, which Celery does not count as a
connection error, and the worker exits ("Unrecoverable error"). Seen when a Sentinel
failover took the primary away while jobs ran (issue 14, scenario 5: one run in three
lost both workers).

Here a missing client is reported as what it is, a connection error: Celery ignores it
while closing and reconnects; the messages stay in kombu's `unacked` hash, and Redis
hands them out again after the visibility timeout (or the worker acknowledges them).
"""

import redis
from kombu.transport import redis as kombu_redis

_connparams = kombu_redis.Channel._connparams


def _connparams_or_connection_error(self, asynchronous=False):
    if self.connection.client is None:
        raise redis.ConnectionError("the broker connection was already closed")
    return _connparams(self, asynchronous=asynchronous)


kombu_redis.Channel._connparams = _connparams_or_connection_error
