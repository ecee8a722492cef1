"""One redis-py client per kombu Redis channel, instead of a new one per command.

kombu's Redis channel (kombu 5.7) builds a new `redis.Redis` for every command it sends
outside its BRPOP connection: each publish's LPUSH, and in a worker's main process each
message's bookkeeping as it is delivered and as it is acknowledged (the `unacked` hash
and index). Building one copies redis-py's ~170 reply parsers into a new dict, about
0.1 ms: a tenth of a `.delay()`, and two per task in a worker's main process, which
every task waits on (docs/performance.md, "Enqueue, end to end").

A redis-py client holds no connection of its own (each command takes one from the
channel's pool and gives it back), so one client per channel does the same work. It is
built again whenever the channel's pool is (after a lost connection, kombu drops its
pools): a client never outlives the pool it draws from.
"""

from kombu.transport import redis as kombu_redis

_create_client = kombu_redis.Channel._create_client


def _channel_client(self, asynchronous=False):
    if asynchronous:  # the BRPOP and pub/sub clients: kombu keeps these already
        return _create_client(self, asynchronous=True)
    pool = self.pool  # built here if kombu dropped it (and may raise, as before)
    client = self.__dict__.get("_switchyard_client")
    if client is None or client.connection_pool is not pool:
        client = self.__dict__["_switchyard_client"] = _create_client(self)
    return client


def reuse_per_channel() -> None:
    """Called once from apps.jobs' ready(), in every process (web, worker, beat, CLI)."""
    kombu_redis.Channel._create_client = _channel_client
