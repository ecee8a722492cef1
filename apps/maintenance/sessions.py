"""Django's `clearsessions`, counting what it removed."""

from importlib import import_module

from django.conf import settings
from django.utils import timezone


def clear_expired_sessions() -> dict:
    """Delete expired sessions; the count is known for database-backed session engines."""
    store = import_module(settings.SESSION_ENGINE).SessionStore
    get_model = getattr(store, "get_model_class", None)
    if get_model is None:
        # File, cache and cookie engines expire sessions their own way.
        store.clear_expired()
        return {"engine": settings.SESSION_ENGINE, "removed": None}
    # The same query as the db engine's clear_expired(), keeping delete()'s row count.
    removed, _ = get_model().objects.filter(expire_date__lt=timezone.now()).delete()
    return {"engine": settings.SESSION_ENGINE, "removed": removed}
