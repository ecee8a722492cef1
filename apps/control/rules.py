"""Who may control queues and workers, and how values are bounded: one place each.

`may_control` is the one rule: superusers and holders of `control.control_queues`.
Every action in actions.py calls `check(actor)`, which asks it for the web and the API;
`manage.py queues|workers|ratelimits` is an operator's tool (like `manage.py schedules`:
whoever has the shell may act) and is recorded under the shell's user name.
"""

import logging
import re
from dataclasses import dataclass
from typing import Any

from apps.jobs.cli import os_user

from .models import Via

log = logging.getLogger(__name__)

PERMISSION = "control.control_queues"
MAX_POOL_STEP = 64  # processes added or removed by one grow/shrink
MAX_AUTOSCALE = 256  # processes an autoscaled worker may reach
MAX_RATE = 1_000_000  # tasks per unit of time
RATE_FORMAT = re.compile(r"([0-9]{1,7})(?:/([smh]))?")  # ASCII digits only
WHOLE_NUMBER = re.compile(r"[0-9]{1,18}")  # ASCII digits only (int() reads any script's)


class ControlError(Exception):
    """Bad input (an unknown queue, a bound crossed): nothing was done."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


class BrokerUnreachable(ControlError):
    """The broker did not answer: nothing was done (API 503, CLI exit 1)."""


class ControlDenied(Exception):
    """The actor may not control queues and workers."""


def may_control(user) -> bool:
    """May this user pause, resume or purge queues, steer workers and set rate limits?"""
    if user is None or not user.is_active:
        return False
    return user.is_superuser or user.has_perm(PERMISSION)


@dataclass(frozen=True)
class Actor:
    """Who acts, and through which door (web, api, cli)."""

    via: str
    user: Any = None
    label: str = ""

    @classmethod
    def cli(cls) -> "Actor":
        return cls(Via.CLI, None, os_user())

    @property
    def name(self) -> str:
        return self.label or getattr(self.user, "username", "") or "unknown"


def check(actor: Actor) -> None:
    if actor.via == Via.CLI:
        return  # an operator's shell, like manage.py schedules
    if not may_control(actor.user):
        raise ControlDenied("You may not control queues and workers.")


def parse_rate(text: str | None) -> str:
    """A rate limit in Celery's format (`10`, `10/s`, `10/m`, `10/h`), 1 to MAX_RATE."""
    text = (text or "").strip()
    match = RATE_FORMAT.fullmatch(text)
    if match is None:
        raise ControlError(
            f"{text[:40]!r} is not a rate limit; write it like 10/m (per s, m or h)", "rate"
        )
    if not 1 <= int(match.group(1)) <= MAX_RATE:
        raise ControlError(f"a rate limit must be from 1 to {MAX_RATE:,} per unit", "rate")
    return f"{int(match.group(1))}/{match.group(2) or 's'}"


def whole_number(text, field: str) -> int:
    """A number typed as text (a form, the shell, a JSON string): ASCII digits only;
    `int()` alone would take an Arabic-Indic three as 3."""
    text = str(text).strip()
    if WHOLE_NUMBER.fullmatch(text) is None:
        raise ControlError(f"{text[:20]!r} is not a whole number (digits 0-9)", field)
    return int(text)


def pool_step(n: int) -> int:
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_POOL_STEP:
        raise ControlError(f"the number of processes must be from 1 to {MAX_POOL_STEP}", "n")
    return n


def autoscale_bounds(maximum: int, minimum: int) -> tuple[int, int]:
    for value, field in ((maximum, "max"), (minimum, "min")):
        if not isinstance(value, int) or isinstance(value, bool):
            raise ControlError(f"{field} must be a whole number", field)
    if not 0 <= minimum <= maximum <= MAX_AUTOSCALE or maximum < 1:
        raise ControlError(f"autoscale needs 0 <= min <= max, 1 <= max <= {MAX_AUTOSCALE}", "max")
    return maximum, minimum


def stored_rate_limits() -> dict[str, str]:
    """The stored limits a worker may apply: a row Celery could not read (written by
    hand or by an older version) is skipped with a log line, never applied."""
    from .models import RateLimit

    limits = {}
    for job_name, rate in RateLimit.objects.values_list("job_name", "rate"):
        try:
            limits[job_name] = parse_rate(rate)
        except ControlError as exc:
            log.warning("rate limit of %s skipped: %s", job_name[:200], exc)
    return limits


def rate_limit_refuses_packing(job_name: str) -> str | None:
    """A job with a rate limit set at run time is not packed (apps/jobs/packs.py): a
    worker applies the limit per message, and a pack is one message for many runs."""
    from .models import RateLimit

    if RateLimit.objects.filter(job_name=job_name).exists():
        return "a rate limit is set for this job (queue and worker control)"
    return None
