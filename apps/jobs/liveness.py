"""When a worker is lost: it holds runs and has given no sign of life for
WORKER_LOST_AFTER_SECONDS (0: never judged lost).

Signs of life are a worker's answers to remote-control pings and inspections
(`inspect.ping_workers`, `inspect.snapshot`: both send `workers_answered`, which apps.ops
keeps as heartbeats and hands back here through `provide`), and the start of the newest
run it holds (it was alive to claim it). The sweeper takes back a lost worker's runs
(`sweeper.recover_lost_workers`); the dashboard shows the worker as lost with them.
"""

import datetime as dt
from collections.abc import Callable

from django.conf import settings
from django.db.models import Max
from django.utils import timezone

from .models import HELD_STATES, Run

LastSeen = Callable[[], dict[str, dt.datetime]]

_last_seen: LastSeen | None = None


def provide(last_seen: LastSeen) -> None:
    """Say where workers' heartbeats are kept: `last_seen()` -> {worker name: when}."""
    global _last_seen
    _last_seen = last_seen


def lost_after() -> dt.timedelta | None:
    seconds = settings.WORKER_LOST_AFTER_SECONDS
    return dt.timedelta(seconds=seconds) if seconds else None


def answering_names(answering: set[str]) -> set[str]:
    """The names runs of these workers may carry: each node name, and its host alone
    (a worker not started by `celery worker`, such as one embedded in a test process,
    records the bare host name on its runs)."""
    return answering | {name.split("@", 1)[1] for name in answering if "@" in name}


def seen_lately(within: dt.timedelta) -> set[str]:
    """Workers that gave a sign of life to any process within `within`."""
    since = timezone.now() - within
    seen = _last_seen() if _last_seen is not None else {}
    return {name for name, when in seen.items() if when >= since}


def silent_holders(answering: set[str]) -> dict[str, dt.datetime | None]:
    """Workers holding started runs that are not among `answering`, with their last
    sign of life: a heartbeat, or the start of the newest run they hold."""
    held = (Run.objects.filter(state__in=HELD_STATES, worker__gt="")
            .exclude(worker__in=answering_names(answering)).values_list("worker")
            .annotate(newest=Max("started_at")).order_by())  # fmt: skip
    seen = _last_seen() if _last_seen is not None else {}
    return {worker: _latest(newest, seen.get(worker)) for worker, newest in held}


def _latest(*times: dt.datetime | None) -> dt.datetime | None:
    known = [when for when in times if when is not None]
    return max(known) if known else None


def is_lost(last_sign: dt.datetime | None, now: dt.datetime | None = None) -> bool:
    """Silent for WORKER_LOST_AFTER_SECONDS or more (no sign at all: lost)."""
    after = lost_after()
    if after is None:
        return False
    return last_sign is None or (now or timezone.now()) - last_sign >= after


def lost_workers(answering: set[str]) -> list[str]:
    """The silent holders (see above) that are lost, by name."""
    now = timezone.now()
    return sorted(name for name, sign in silent_holders(answering).items() if is_lost(sign, now))
