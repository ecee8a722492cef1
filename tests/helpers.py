"""Plain helpers shared by the tests: waiting, and `make_*` factories."""

import time

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.05):
    """Poll until predicate() is truthy; return its value or fail after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {predicate}")


def make_user(username: str = "alice", *, staff: bool = True, jobs: tuple[str, ...] = (), **kw):
    kw.setdefault("is_staff", staff)
    user = get_user_model().objects.create_user(username, f"{username}@example.com", "pw", **kw)
    for job_name in jobs:
        user.user_permissions.add(Permission.objects.get(codename=f"run_{job_name}"))
    return user


def make_superuser(username: str = "root"):
    return get_user_model().objects.create_superuser(username, f"{username}@example.com", "pw")
