"""Beat's send plans (apps/jobs/publishing.py) put on the broker exactly the message
Celery's apply_async would, and leave to apply_async what they cannot build the same."""

import gc
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.jobs.models import Run
from apps.scheduling.lease import redis_client
from apps.scheduling.schedulers import run_id

from .beat_helpers import make_queue_name, make_schedule, make_scheduler, queued_messages

pytestmark = pytest.mark.django_db


@pytest.fixture
def scheduler():
    made = []

    def make():
        made.append(make_scheduler())
        return made[-1]

    yield make
    for beat in made:
        beat.close()


def sent_both_ways(beat, name: str) -> tuple[dict, dict]:
    """The message of one run sent by the entry's plan, and by apply_async."""
    entry = beat.schedule[name]
    task_id = run_id(name, entry.last_run_at)
    when = (entry.last_run_at + timedelta(seconds=60)).timestamp()
    messages = []
    for plan in (beat._plan(entry), None):
        beat._plans[name] = plan
        queue = entry.options["queue"]
        beat._publish(entry, task_id, when)
        [message] = queued_messages(queue)
        redis_client().delete(queue)
        del message["properties"]["delivery_tag"]  # random per message
        messages.append(message)
    return messages[0], messages[1]


def test_a_run_sent_by_its_plan_is_the_message_apply_async_would_send(scheduler):
    queue = make_queue_name()
    make_schedule("a", due_in=30, queue=queue, headers=json.dumps({"team": "x"}))
    beat = scheduler()
    assert beat._plan(beat.schedule["a"]) is not None
    planned, applied = sent_both_ways(beat, "a")
    assert planned == applied
    assert planned["headers"]["periodic_task_name"] == "a"
    assert planned["headers"]["team"] == "x"


def test_a_run_of_a_task_this_process_does_not_know_is_the_message_send_task_would_send(scheduler):
    queue = make_queue_name()
    make_schedule("a", due_in=30, queue=queue, task="elsewhere.tasks.report")
    beat = scheduler()
    assert beat._plan(beat.schedule["a"]) is not None
    planned, applied = sent_both_ways(beat, "a")
    assert planned == applied
    assert planned["headers"]["task"] == "elsewhere.tasks.report"


def test_a_run_sent_by_its_plan_is_recorded(scheduler):
    queue = make_queue_name()
    task = make_schedule("a", due_in=-1, queue=queue)
    beat = scheduler()
    beat.tick()
    run = Run.objects.get(task_id=run_id("a", task.last_run_at))
    assert (run.schedule_name, run.queue, run.parameters) == ("a", queue, {"x": 1, "y": 2})


def test_a_schedule_with_an_expiry_is_sent_by_apply_async(scheduler):
    queue = make_queue_name()
    make_schedule("a", due_in=-1, queue=queue, expire_seconds=30)
    beat = scheduler()
    assert beat._plan(beat.schedule["a"]) is None  # the expiry counts from each send
    before = timezone.now()
    beat.tick()
    [message] = queued_messages(queue)
    expires = timezone.datetime.fromisoformat(message["headers"]["expires"])
    assert before + timedelta(seconds=29) < expires < timezone.now() + timedelta(seconds=31)


def test_arguments_the_task_refuses_are_left_to_apply_async_which_refuses_them(scheduler, caplog):
    queue = make_queue_name()
    make_schedule("a", due_in=-1, queue=queue, task="celery.backend_cleanup",
                  kwargs=json.dumps({"z": 1}))  # fmt: skip
    beat = scheduler()
    assert beat._plan(beat.schedule["a"]) is None
    beat.tick()
    assert queued_messages(queue) == []
    assert "could not send a" in caplog.text


def test_beat_keeps_its_entries_out_of_the_garbage_collectors_full_passes_while_it_lives():
    scheduler = make_scheduler()
    assert gc.get_freeze_count() > 0
    scheduler.close()
    assert gc.get_freeze_count() == 0
