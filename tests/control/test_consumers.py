"""Which workers consume each queue (the dashboard's queues, a job's rate): kept, and
asked again off the request once the kept answer is a few seconds old."""

import threading
import time

import pytest

from apps.control import broker
from apps.jobs import revalidating
from tests.helpers import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.once]

KEPT = {"old-queue": ["gone@host"]}


@pytest.fixture
def asked(monkeypatch):
    """The workers' answers as the test gives them; each ask noted with its thread."""
    threads: list[str] = []

    def ask():
        threads.append(threading.current_thread().name)
        return {"celery": ["worker@host"]}

    monkeypatch.setattr(broker, "_ask_consumers", ask)
    return threads


def test_an_answer_past_its_fresh_time_is_shown_at_once_while_a_thread_asks_again(asked):
    revalidating.store(broker.CONSUMERS_KEY, KEPT, 60, stored_at=time.time() - 6)

    assert broker.consumers() == KEPT

    wait_for(lambda: not revalidating.refreshing(broker.CONSUMERS_KEY) and asked)
    assert asked != [threading.current_thread().name]  # not asked by the page itself
    assert broker.consumers() == {"celery": ["worker@host"]}


def test_a_fresh_answer_is_shown_without_asking(asked):
    revalidating.store(broker.CONSUMERS_KEY, KEPT, 60)

    assert broker.consumers() == KEPT
    assert asked == []


def test_after_a_control_action_the_next_page_waits_for_a_new_answer(asked):
    revalidating.store(broker.CONSUMERS_KEY, KEPT, 60)

    broker.forget_consumers()

    assert broker.consumers() == {"celery": ["worker@host"]}
    assert asked == [threading.current_thread().name]
