"""A pipeline is started like any job (the form, the API, `manage.py jobs run`, a
schedule) and refused like one: its typed parameters are the catalog's."""

import json
import uuid
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from apps.demo.pipelines import sum_of_squares
from apps.jobs.models import Run, Source, State
from tests.api.helpers import token_client
from tests.helpers import make_user, wait_for
from tests.scheduling.beat_helpers import make_schedule, make_scheduler

PIPELINE = sum_of_squares.name


def post_json(client, url: str, body) -> object:
    return client.post(url, json.dumps(body), content_type="application/json")


@pytest.mark.django_db
@pytest.mark.once
def test_the_pipeline_is_in_the_catalog_with_its_typed_form(client):
    client.force_login(make_user("alice", jobs=(PIPELINE,)))
    assert "Sum of squares" in client.get("/jobs/").content.decode()
    page = client.get(f"/jobs/{PIPELINE}/").content.decode()
    assert 'name="count"' in page and 'max="1000"' in page


@pytest.mark.django_db
@pytest.mark.once
def test_bad_pipeline_parameters_are_refused_at_every_door_and_nothing_is_recorded(client):
    alice = make_user("alice", jobs=(PIPELINE,))
    client.force_login(alice)
    form = client.post(f"/jobs/{PIPELINE}/", {"count": "1001", "pause": "0",
                                              "idempotency_key": uuid.uuid4()})  # fmt: skip
    assert form.status_code == 200 and "count" in form.context["form"].errors
    api = post_json(token_client(alice), f"/api/jobs/{PIPELINE}/runs",
                    {"parameters": {"count": 0, "pause": "x\x00"}})  # fmt: skip
    assert api.status_code == 422 and set(api.json()["errors"]) == {"count", "pause"}
    with pytest.raises(CommandError) as refused:
        call_command("jobs", "run", PIPELINE, "count=-1", stdout=StringIO())
    assert refused.value.returncode == 2 and "count" in str(refused.value)
    assert not Run.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres_pass
def test_beat_sends_a_scheduled_pipeline_and_its_steps_carry_the_schedule(celery_worker):
    make_schedule("nightly squares", due_in=-1, task=PIPELINE,
                  kwargs=json.dumps({"count": 3}))  # fmt: skip
    beat = make_scheduler()
    try:
        beat.tick()
    finally:
        beat.close()
    runs = Run.objects.filter(schedule_name="nightly squares", pipeline=None)
    run = wait_for(lambda: runs.filter(state=State.SUCCEEDED).first())
    assert (run.source, run.job_name) == (Source.SCHEDULE, PIPELINE)
    assert run.steps.count() == 5
    assert set(run.steps.values_list("schedule_name", "source", "state")) == {
        ("nightly squares", Source.PIPELINE, State.SUCCEEDED)
    }


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres_pass
def test_the_api_shows_a_pipeline_s_steps_and_each_step_names_its_pipeline(celery_worker):
    api = token_client(make_user("alice", jobs=(PIPELINE,)))
    started = post_json(api, f"/api/jobs/{PIPELINE}/runs", {"parameters": {"count": 2}})
    assert started.status_code == 201 and started.json()["steps"] == []  # not started yet
    run_id = started.json()["id"]
    wait_for(lambda: Run.objects.filter(pk=run_id, state=State.SUCCEEDED).exists())
    run = api.get(f"/api/runs/{run_id}").json()
    steps = run["steps"]
    recorded = Run.objects.filter(pipeline_id=run_id).order_by("pk")
    assert [(s["id"], s["step"], s["state"]) for s in steps] == [
        (step.pk, step.step, State.SUCCEEDED) for step in recorded
    ]
    assert len(steps) == 4 and run["pipeline"] is None
    first = api.get(f"/api/runs/{steps[0]['id']}").json()
    assert (first["pipeline"], first["step"], first["steps"]) == (run_id, steps[0]["step"], [])
