"""A run started from the web, the API, the CLI or a re-run is published with its job's
send plan (apps/jobs/publishing.py): exactly the message `apply_async` would send, and
`apply_async` itself wherever a plan would build a different one."""

import base64
import json
import uuid

import pytest
import redis
from celery._state import _task_stack

from apps.demo.tasks import add
from apps.jobs import dispatch, publishing
from apps.jobs.catalog import get_job
from apps.jobs.dispatch import start_run, start_runs
from apps.jobs.models import Source
from project import celery_app
from tests.helpers import make_run

pytestmark = pytest.mark.django_db

ADD = "apps.demo.tasks.add"


@pytest.fixture
def queue(redis_url):
    """A queue no worker reads: what was published stays there to be looked at."""
    broker = redis.Redis.from_url(redis_url)
    name = f"plan-test-{uuid.uuid4().hex[:8]}"
    yield broker, name
    broker.delete(name)


def taken(broker, name: str) -> list[dict]:
    """The messages waiting in `name`, oldest first, emptied; the delivery tag (random
    per message) left out."""
    messages = [json.loads(raw) for raw in reversed(broker.lrange(name, 0, -1))]
    broker.delete(name)
    for message in messages:
        del message["properties"]["delivery_tag"]
    return messages


def plans():
    return celery_app.amqp.__dict__.setdefault("switchyard_plans", {})


def without_plan(name: str, queue: str):
    """Forget the plan of (job, queue) for the next publish: `apply_async` sends it."""
    plans()[(name, queue)] = None


def test_a_started_run_is_the_message_apply_async_would_send(queue):
    broker, name = queue
    run = make_run(ADD, parameters={"x": 1, "y": 2}, queue=name)
    assert publishing.plan_for(celery_app, ADD, name) is not None
    dispatch.publish(run, {"queue": name})
    [planned] = taken(broker, name)
    without_plan(ADD, name)
    dispatch.publish(run, {"queue": name})
    [applied] = taken(broker, name)
    assert planned == applied
    assert planned["headers"]["kwargsrepr"] == "{'x': 1, 'y': 2}"


def test_runs_started_in_bulk_each_carry_their_own_arguments(
    queue, django_capture_on_commit_callbacks
):
    broker, name = queue
    with django_capture_on_commit_callbacks(execute=True):
        runs = start_runs(get_job(ADD), [{"x": n, "y": 1} for n in range(3)],
                          source=Source.API, options={"queue": name})  # fmt: skip
    messages = taken(broker, name)
    assert [m["headers"]["id"] for m in messages] == [run.task_id for run in runs]
    assert [json.loads(base64.b64decode(m["body"]))[1] for m in messages] == [
        {"x": n, "y": 1} for n in range(3)
    ]


def test_a_started_run_uses_its_jobs_plan(queue, django_capture_on_commit_callbacks):
    broker, name = queue
    with django_capture_on_commit_callbacks(execute=True):
        start_run(get_job(ADD), {"x": 1, "y": 2}, source=Source.CLI, options={"queue": name})
    assert plans()[(ADD, name)] is not None
    assert len(taken(broker, name)) == 1


def test_arguments_the_task_refuses_go_to_apply_async_which_refuses_them(queue):
    broker, name = queue
    run = make_run("apps.demo.tasks.mul", parameters={"nope": 1}, queue=name)
    assert publishing.plan_for(celery_app, run.job_name, name) is not None
    with pytest.raises(TypeError):
        dispatch.publish(run, {"queue": name})
    assert taken(broker, name) == []


def test_a_run_started_inside_a_task_is_left_to_apply_async_which_names_its_parent(queue):
    broker, name = queue
    run = make_run(ADD, parameters={"x": 1, "y": 2}, queue=name)
    add.push_request(id="parent-task-id", root_id="root-task-id", called_directly=False)
    _task_stack.push(add)
    try:
        assert publishing.plan_for(celery_app, ADD, name) is None
        dispatch.publish(run, {"queue": name})
    finally:
        _task_stack.pop()
        add.pop_request()
    [message] = taken(broker, name)
    assert (message["headers"]["parent_id"], message["headers"]["root_id"]) == (
        "parent-task-id",
        "root-task-id",
    )


def test_options_beyond_a_queue_are_left_to_apply_async(queue):
    broker, name = queue
    run = make_run(ADD, parameters={"x": 1, "y": 2}, queue=name)
    dispatch.publish(run, {"queue": name, "countdown": 60})
    [message] = taken(broker, name)
    assert message["headers"]["eta"] is not None


def test_the_plans_a_process_keeps_are_bounded_whatever_queues_callers_name():
    for number in range(publishing.PLANS_AT_MOST + 5):
        publishing.plan_for(celery_app, ADD, f"queue-{number}")
    assert len(plans()) <= publishing.PLANS_AT_MOST


def test_a_job_whose_options_change_is_sent_where_they_now_route_it(queue, monkeypatch):
    broker, name = queue
    run = make_run(ADD, parameters={"x": 1, "y": 2})
    assert publishing.plan_for(celery_app, ADD, "") is not None  # made with no queue
    monkeypatch.setattr(add, "queue", name, raising=False)  # as @job(queue=...) does
    monkeypatch.setattr(add, "_exec_options", None)  # Celery works its options out again
    dispatch.publish(run, {})
    assert [m["headers"]["id"] for m in taken(broker, name)] == [run.task_id]


def test_a_plan_follows_task_events_turned_on(queue, monkeypatch):
    broker, name = queue
    run = make_run(ADD, parameters={"x": 1, "y": 2})
    plan = publishing.plan_for(celery_app, ADD, name)
    monkeypatch.setattr(celery_app.conf, "task_send_sent_event", not plan.sent_event)
    assert publishing.plan_for(celery_app, ADD, name).sent_event is not plan.sent_event
    dispatch.publish(run, {"queue": name})
    assert len(taken(broker, name)) == 1
