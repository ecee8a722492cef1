"""Numbers that are slow to work out and change slowly, for pages polled by many people
(the dashboard's charts, the broker snapshot): stale while revalidating.

`cached(key, compute, fresh_for, keep_for)` works the value out at once only when none
is kept; past `fresh_for` seconds it returns the kept value as it is while one thread of
this process works it out again (`cache.add` of a lock key: one refresh at a time per
cache), so no request waits for it. A value older than `keep_for` is dropped by the
cache and worked out at once again.
"""

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from django.core.cache import cache
from django.db import connections

log = logging.getLogger(__name__)

# A refresh's lock outlives a thread that died without releasing it (a process killed
# while it worked, with a cache shared between processes) by this long at most.
LOCK_SECONDS = 60


def cached(key: str, compute: Callable[[], Any], *, fresh_for: float, keep_for: float) -> Any:
    kept = cache.get(key)
    if kept is None:
        return store(key, compute(), keep_for)
    stored_at, value = kept
    if time.time() - stored_at > fresh_for and cache.add(_lock(key), 1, LOCK_SECONDS):
        thread = threading.Thread(target=_refresh, args=(key, compute, keep_for),
                                  name=f"refresh {key}", daemon=True)  # fmt: skip
        thread.start()
    return value


def store(key: str, value: Any, keep_for: float, stored_at: float | None = None) -> Any:
    """Keep `value` as worked out at `stored_at` (now by default); returns it."""
    cache.set(key, (time.time() if stored_at is None else stored_at, value), keep_for)
    return value


def peek(key: str, fresh_for: float | None = None) -> Any:
    """The kept value (only if worked out within `fresh_for` seconds, when given), or
    None; never works it out."""
    kept = cache.get(key)
    if kept is None or (fresh_for is not None and time.time() - kept[0] > fresh_for):
        return None
    return kept[1]


def refreshing(key: str) -> bool:
    return cache.get(_lock(key)) is not None


def _lock(key: str) -> str:
    return f"{key}:refreshing"


def _refresh(key: str, compute: Callable[[], Any], keep_for: float) -> None:
    try:
        store(key, compute(), keep_for)
    except Exception:
        log.exception("could not work out %s again", key)
    finally:
        cache.delete(_lock(key))
        connections.close_all()  # this thread's own connections
