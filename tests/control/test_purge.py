"""Purging a queue: the count shown is what is dropped, and the runs end cancelled."""

import pytest
from django.urls import reverse

from apps.control import actions, broker
from apps.control.models import ControlAction
from apps.jobs.models import Run, State

from .helpers import cli, send_adds

# Nothing here depends on the database's vendor: the SQLite pass is enough.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.once]


def test_purge_drops_the_counted_messages_and_cancels_their_runs_with_a_note(test_queue):
    runs = send_adds(test_queue, 3)
    other = send_adds(f"{test_queue}-other", 1)[0]  # another queue is left alone
    assert broker.waiting(test_queue) == 3

    purged = actions.purge_queue(cli(), test_queue)

    assert (purged.dropped, purged.cancelled) == (3, 3)
    assert broker.waiting(test_queue) == 0
    for run in runs:
        run.refresh_from_db()
        assert run.state == State.CANCELLED
        assert f"queue {test_queue} purged" in run.note
    assert Run.objects.get(pk=other.pk).state == State.QUEUED
    assert broker.waiting(f"{test_queue}-other") == 1
    row = ControlAction.objects.get(action="purge_queue")
    assert (row.via, row.target, row.detail["dropped"]) == ("cli", test_queue, 3)
    broker.drain(f"{test_queue}-other")


def test_the_purge_page_says_how_many_messages_it_will_drop_then_drops_them(
    root_client, test_queue
):
    runs = send_adds(test_queue, 2)
    url = reverse("control:purge", args=[test_queue])

    page = root_client.get(url)

    assert f"2</strong> messages waiting in {test_queue} will be dropped" in page.text
    assert broker.waiting(test_queue) == 2  # looking drops nothing
    answer = root_client.post(url, {"confirm": "yes", "next": "/"}, follow=True)
    assert "2 messages dropped, 2 runs cancelled" in answer.text
    assert {r.state for r in Run.objects.filter(pk__in=[r.pk for r in runs])} == {State.CANCELLED}


def test_a_message_that_is_not_a_celery_task_counts_as_dropped(test_queue):
    from project import celery_app

    with celery_app.connection_for_write() as conn:
        conn.SimpleQueue(test_queue).put({"not": "a task"})
    send_adds(test_queue, 1)
    assert broker.waiting(test_queue) == 2

    purged = actions.purge_queue(cli(), test_queue)

    assert (purged.dropped, purged.cancelled) == (2, 1)
