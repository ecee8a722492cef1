"""clear_sessions: Django's clearsessions, with a count of what it removed."""

import datetime as dt

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.utils import timezone

from apps.maintenance.sessions import clear_expired_sessions

pytestmark = pytest.mark.django_db


def make_session(expires_in: dt.timedelta) -> str:
    store = SessionStore()
    store["user"] = "alice"
    store.set_expiry(timezone.now() + expires_in)
    store.save()
    return store.session_key


def test_expired_sessions_are_removed_and_counted():
    for _ in range(3):
        make_session(dt.timedelta(days=-1))
    live = make_session(dt.timedelta(days=1))
    result = clear_expired_sessions()
    assert result["removed"] == 3
    assert list(Session.objects.values_list("session_key", flat=True)) == [live]


def test_nothing_to_remove_counts_zero():
    make_session(dt.timedelta(hours=1))
    assert clear_expired_sessions()["removed"] == 0


def test_a_session_engine_without_a_table_is_cleared_without_a_count(settings):
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
    assert clear_expired_sessions() == {
        "engine": "django.contrib.sessions.backends.signed_cookies", "removed": None,
    }  # fmt: skip
