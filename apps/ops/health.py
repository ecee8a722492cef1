"""Readiness: is each dependency of the site answering? For /readyz and the dashboard."""

from dataclasses import asdict, dataclass

from django.conf import settings
from django.db import DatabaseError, connection

from apps.jobs import inspect

from . import heartbeat, metrics


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def readiness() -> list[Check]:
    snap = inspect.first_answer()
    return [check_database(), check_broker(snap), check_workers(snap), check_beat()]


def as_json(checks: list[Check], detailed: bool = True) -> dict:
    """The overall status; with `detailed`, each check with its detail (worker host
    names, heartbeat ages, database errors: for staff and the metrics token only)."""
    status = "ok" if all(c.ok for c in checks) else "fail"
    if not detailed:
        return {"status": status}
    return {
        "status": status,
        "checks": {c.name: {k: v for k, v in asdict(c).items() if k != "name"} for c in checks},
    }


def shows_details(request) -> bool:
    """Signed-in active staff, or a caller with METRICS_TOKEN, see each check's detail;
    anyone else (a load balancer, the internet) the status alone. A session that cannot
    be read (the database is down) counts as anonymous: the probe still answers."""
    if metrics.has_token(request):
        return True
    try:
        user = request.user
        return bool(user.is_active and user.is_staff)
    except DatabaseError:
        return False


def check_database() -> Check:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as exc:
        return Check("database", False, f"unreachable: {_first_line(exc)}")
    return Check("database", True, "reachable")


def check_broker(snap: inspect.Snapshot) -> Check:
    if snap.broker_ok:
        return Check("broker", True, "reachable")
    return Check("broker", False, f"unreachable: {snap.error}")


def check_workers(snap: inspect.Snapshot) -> Check:
    if not snap.broker_ok:
        return Check("workers", False, "unknown: the broker is unreachable")
    if not snap.workers:
        return Check("workers", False, "no worker answered")
    return Check("workers", True, f"answering: {', '.join(sorted(snap.worker_names))}")


def check_beat() -> Check:
    try:
        age = heartbeat.age("beat")
    except DatabaseError:
        return Check("beat", False, "unknown: the database is unreachable")
    if age is None:
        return Check("beat", False, "no heartbeat recorded yet")
    seconds = age.total_seconds()
    if seconds >= settings.BEAT_HEARTBEAT_MAX_AGE:
        return Check("beat", False, f"last heartbeat {seconds:.0f} s ago")
    return Check("beat", True, f"last heartbeat {seconds:.0f} s ago")


def _first_line(exc: Exception) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:300] if lines else type(exc).__name__
