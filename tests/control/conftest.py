import pytest
from django.core.cache import cache
from kombu import Queue

from project import celery_app
from tests.browser_fixtures import *  # noqa: F403

TEST_QUEUE = "control-test"  # no other test's worker consumes it


@pytest.fixture
def test_queue(monkeypatch):
    """A queue of this package's own, known to the site (catalog.queue_names)."""
    queues = [Queue(celery_app.conf.task_default_queue), Queue(TEST_QUEUE)]
    monkeypatch.setitem(celery_app.conf, "task_queues", queues)
    return TEST_QUEUE


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Worker lists and consumers are cached for seconds; each test starts clean."""
    cache.clear()
    yield
    cache.clear()
