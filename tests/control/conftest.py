import uuid

import pytest
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
def _quick_answers(request, monkeypatch):
    """Without a worker to answer, pages and refusals wait out inspect.TIMEOUT: shorten
    it, except where real workers must answer (tests that start them)."""
    if "start_process" not in request.fixturenames:
        monkeypatch.setattr(inspect, "TIMEOUT", 0.2)


@pytest.fixture(autouse=True)
def _no_rate_limit_left_behind():
    """A rate limit a test broadcasts reaches every worker, the session's in-process one
    too (it shares this process's app): put each task's declared limit back after the
    test, so that later tests' jobs are not throttled."""
    yield
    for name, task in list(celery_app.tasks.items()):
        declared = type(task).rate_limit
        if task.rate_limit != declared:
            task.rate_limit = declared
            celery_app.control.broadcast(
                "rate_limit", arguments={"task_name": name, "rate_limit": declared}, reply=False
            )
