"""A leader lease in Redis: at most one beat process dispatches at a time.

The lease is one key holding its owner's token, with a time to live. The holder renews
it every few seconds; when the holder dies, the key expires and the next process that
asks gets it. Acquire-or-renew and release are Lua scripts, so a process only ever
extends or deletes a lease it still owns.

A process counts itself leader only until `valid_until`: the time it started its last
successful renewal plus the TTL, less a safety margin. Measured on its own monotonic
clock from *before* the call, so it stops dispatching before Redis lets the key go,
however slow the answer was.

Why Lua, not redis-py's `redis.lock.Lock` (token-checked `release`, `extend`,
`reacquire`)? Decided per script (issue 13), measured once with
`python -m bench.redis_locks` (redis-py 8.1.0, Redis 6.2.14 on a unix socket, 2-core
machine shared with other jobs; microseconds per operation, median of 5 x 3,000):

| operation | Lua script (EVAL) | redis.lock.Lock |
|---|---:|---:|
| lease: renew (leader) | 44 | 58 |
| lease: ask for a held lease (standby) | 53 | 131 |
| lease: acquire, then release | 69 | 83 |
| overlap: refresh a run's lock | 35 | 40 |

- ACQUIRE_OR_RENEW: kept. "Renew if mine, else take it if free" is one atomic step
  here; Lock needs two calls (`reacquire`, and on LockNotOwnedError `acquire`), with a
  window between them, and is 2.5x slower for every standby on every renewal.
- RELEASE (here) and overlap.RELEASE: kept. Lock.release / do_release run the same
  compare-and-delete, so Lock is as correct, but slower, and the overlap lock is set by
  beat and released by a worker that never held a Lock object (it would build one per
  call and plant the token by hand).
- overlap.REFRESH: kept. Lock.do_reacquire is the same compare-and-PEXPIRE, as correct,
  slightly slower, with the same token planting.
So no script is replaced: each is as correct as the library's and faster.
"""

import functools
import logging
import os
import socket
import time
import uuid
from urllib.parse import urlsplit

import redis
from celery import current_app
from django.conf import settings
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel

log = logging.getLogger(__name__)

BEAT_KEY = "switchyard:beat:leader"

# Renew our own lease, or take a free one; 1 when the caller holds it afterwards.
ACQUIRE_OR_RENEW = """
local owner = redis.call('GET', KEYS[1])
if owner == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return 1
end
if not owner then
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
    return 1
end
return 0
"""

RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


def owner_token() -> str:
    """Who holds a lease, readable in logs and heartbeats: host:pid:random."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


REDIS_SCHEMES = ("redis://", "rediss://", "sentinel://")


def scheduling_redis_url() -> str:
    """SCHEDULING_REDIS_URL, else the broker's URL if the broker is Redis (or Redis
    Sentinel), else ""."""
    if settings.SCHEDULING_REDIS_URL:
        return settings.SCHEDULING_REDIS_URL
    broker = current_app.conf.broker_url or ""
    return broker if broker.startswith(REDIS_SCHEMES) else ""


def redis_client() -> redis.Redis | None:
    """The Redis that holds Switchyard's scheduling locks; None when there is none."""
    url = scheduling_redis_url()
    return client_for(url) if url else None


@functools.lru_cache(maxsize=4)
def client_for(url: str) -> redis.Redis:
    """A client that fails fast: beat asks again on its next tick anyway."""
    options = {"socket_timeout": 2, "socket_connect_timeout": 2, "decode_responses": True,
               "retry": Retry(NoBackoff(), 0)}  # fmt: skip
    if url.startswith("sentinel://"):
        return sentinel_client(url, settings.REDIS_SENTINEL_MASTER, **options)
    return redis.Redis.from_url(url, **options)


def sentinel_client(url: str, master: str, **options) -> redis.Redis:
    """A client of the primary that Sentinels name, asked again after each lost
    connection (so it follows a failover). `url` as kombu takes it:
    `sentinel://[:password@]host:port[/db];sentinel://host:port;...`, the password and
    database being the primary's."""
    nodes, password, db = [], None, 0
    for part in url.split(";"):
        parsed = urlsplit(part.strip())
        nodes.append((parsed.hostname, parsed.port or 26379))
        password = password or parsed.password
        db = int(parsed.path.strip("/") or db)
    timeouts = {key: options[key] for key in ("socket_timeout", "socket_connect_timeout")}
    return Sentinel(nodes, **timeouts).master_for(master, db=db, password=password, **options)


class Lease:
    """One named lease. With no Redis client it is always held (a single beat)."""

    def __init__(self, client: redis.Redis | None, key: str, ttl: float, owner: str = ""):
        self.client = client
        self.key = key
        self.ttl = ttl
        self.owner = owner or owner_token()
        self.margin = max(0.5, ttl / 10)
        self.valid_until = 0.0

    @property
    def ttl_ms(self) -> int:
        return int(self.ttl * 1000)

    @property
    def renew_every(self) -> float:
        return self.ttl / 3

    @property
    def valid(self) -> bool:
        return self.client is None or time.monotonic() < self.valid_until

    def hold(self) -> bool:
        """Acquire or renew; True while this process may act as the holder."""
        if self.client is None:
            return True
        started = time.monotonic()
        try:
            held = self.client.eval(ACQUIRE_OR_RENEW, 1, self.key, self.owner, self.ttl_ms)
        except redis.RedisError as exc:
            log.warning("lease %s: Redis error, holding on until it lapses: %s", self.key, exc)
            return self.valid
        self.valid_until = started + self.ttl - self.margin if held else 0.0
        return bool(held)

    def release(self) -> None:
        self.valid_until = 0.0
        if self.client is None:
            return
        try:
            self.client.eval(RELEASE, 1, self.key, self.owner)
        except redis.RedisError as exc:
            log.warning("lease %s: could not release (it will expire): %s", self.key, exc)

    def holder(self) -> str | None:
        if self.client is None:
            return self.owner
        return self.client.get(self.key)


def beat_lease() -> Lease:
    return Lease(redis_client(), BEAT_KEY, settings.BEAT_LEASE_SECONDS)
