import uuid

import pytest
from django.core.cache import cache
from kombu import Queue

from apps.jobs import inspect
from project import celery_app
from tests.browser_fixtures import *  # noqa: F403


@pytest.fixture
def test_queue(monkeypatch):
    """A queue of this test's own, known to the site (catalog.queue_names). Its name is
    new, so no worker started earlier in the session (the in-process one) consumes it."""
    name = f"control-test-{uuid.uuid4().hex[:8]}"
    queues = [Queue(celery_app.conf.task_default_queue), Queue(name)]
    monkeypatch.setitem(celery_app.conf, "task_queues", queues)
    return name


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Worker lists and consumers are cached for seconds; each test starts clean."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _quick_answers(request, monkeypatch):
    """Without a worker to answer, pages and refusals wait out inspect.TIMEOUT: shorten
    it, except where real workers must answer (tests that start them)."""
    if "start_process" not in request.fixturenames:
        monkeypatch.setattr(inspect, "TIMEOUT", 0.2)
