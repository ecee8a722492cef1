"""Which task messages a Redis broker still holds: waiting in a queue, or taken by a
worker and not yet acknowledged (kombu's `unacked` hash).

The sweeper asks this before it re-sends a run whose message may be lost
(`sweeper.resend_lost`). One MULTI reads every list and the hash together, so a message
kombu moves from `unacked` back to its queue in a transaction of its own is seen in one
place or the other, never in neither.
"""

import json
import logging

from celery import current_app
from kombu.exceptions import OperationalError
from redis.exceptions import RedisError

from . import packs

log = logging.getLogger(__name__)

# Past this many messages in the queues looked at (or unacknowledged), the broker is
# not read: a backlog that long is not where a lost message would be noticed anyway.
READ_AT_MOST = 20_000


def held_task_ids(queues: set[str]) -> set[str] | None:
    """Task ids of every message in `queues` and in the unacknowledged hash; None when
    the broker is not Redis, holds too much to read, or cannot be reached."""
    try:
        return _read(queues)
    except (OperationalError, RedisError, OSError):
        log.warning("could not read the broker's queues", exc_info=True)
        return None


def _read(queues: set[str]) -> set[str] | None:
    with current_app.connection_for_read() as connection:
        if connection.transport.driver_type != "redis":
            return None
        channel = connection.default_channel
        if channel.global_keyprefix:
            return None  # kombu prefixes some commands' keys and not others
        keys = [channel._q_for_pri(queue, step)
                for queue in sorted(queues) for step in channel.priority_steps]  # fmt: skip
        client = channel.client
        with client.pipeline(transaction=True) as pipe:
            pipe.hlen(channel.unacked_key)
            for key in keys:
                pipe.llen(key)
            sizes = pipe.execute()
        if sum(sizes) > READ_AT_MOST:
            return None
        with client.pipeline(transaction=True) as pipe:
            pipe.hvals(channel.unacked_key)
            for key in keys:
                pipe.lrange(key, 0, -1)
            unacked, *lists = pipe.execute()
    ids = {task_id for raw in unacked for task_id in _task_ids(raw, unacked=True)}
    ids.update(task_id for items in lists for raw in items for task_id in _task_ids(raw))
    ids.discard(None)
    return ids


def _task_ids(raw: bytes, unacked: bool = False) -> list:
    """The task id in a message as kombu stores it (`unacked`: [message, exchange,
    routing key]), and a pack's run ids (apps/jobs/packs.py); none for anything else
    found there."""
    try:
        message = json.loads(raw)
        message = message[0] if unacked else message
        headers = message.get("headers") or {}
        own = headers.get("id") or (message.get("properties") or {}).get("correlation_id")
        carried = headers.get(packs.HEADER)
        carried = carried if isinstance(carried, list) else []
        return [own, *(task_id for task_id in carried if isinstance(task_id, str))]
    except (ValueError, TypeError, AttributeError, IndexError, KeyError):
        return []
