"""Who acts, and from where: the context every audited change is written in.

The web and the admin get theirs from `AuditMiddleware` (the request's user, or the API
token's user, resolved when an entry is written); a management command opens
`acting(via=Via.CLI, label=os_user)` around its work. django-auditlog copies the
context onto each entry it writes.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from auditlog.context import set_extra_data
from auditlog.middleware import AuditlogMiddleware

from .models import Via


@contextmanager
def acting(user=None, *, via: str = Via.CLI, label: str = "") -> Iterator[None]:
    """Changes made inside are recorded as made by `user` (or `label`) from `via`."""
    data: dict = {"via": via, "actor_label": label[:200]}
    if user is not None and user.is_authenticated:
        data["actor"] = user
    with set_extra_data(context_data=data):
        yield


def via_of(request) -> str:
    """The admin, the API or the web: by the URL namespace the request resolved to
    (read when an entry is written), else by its path."""
    match = getattr(request, "resolver_match", None)
    spaces = set(match.namespaces) if match is not None else set()
    if "admin" in spaces or (not spaces and request.path.startswith("/admin/")):
        return Via.ADMIN
    if "api" in spaces or (not spaces and request.path.startswith("/api/")):
        return Via.API
    return Via.WEB


def actor_id(request) -> int | None:
    """The signed-in user, or the user of the API token (ninja sets request.auth)."""
    for user in (getattr(request, "user", None), getattr(request, "auth", None)):
        if getattr(user, "is_authenticated", False):
            return user.pk
    return None


class AuditMiddleware(AuditlogMiddleware):
    """django-auditlog's middleware, which also says where the change came from; the
    actor is read when an entry is written, after the API has authenticated its token."""

    def get_extra_data(self, request) -> dict:
        # Not the stock `actor`: reading request.user loads the session from the
        # database on every request (/readyz must answer while the database is down).
        return {
            "remote_addr": self._get_remote_addr(request),
            "remote_port": self._get_remote_port(request),
            "actor_id": lambda: actor_id(request),
            "via": lambda: via_of(request),
        }
