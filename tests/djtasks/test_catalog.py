"""Tasks API `@task`s in Switchyard's catalog: listed, typed, started from the web, the
API and the CLI, scheduled in the admin, and shown on /runs/."""

import json
import uuid

import pytest
from django.urls import reverse
from django_celery_beat.models import PeriodicTask

from apps.demo.tasks_api.tasks import divide, greet, tally
from apps.jobs.catalog import get_job
from apps.jobs.models import Run, Source, State
from apps.scheduling.forms import form_data
from tests.api.helpers import token_client
from tests.helpers import make_user, wait_for
from tests.jobs.test_cli import jobs

GREET = greet.module_path
TALLY = tally.module_path
database = pytest.mark.django_db
with_worker = pytest.mark.django_db(transaction=True)


def finished(run: Run) -> Run | None:
    run.refresh_from_db()
    return run if run.is_finished else None


def test_every_demo_task_is_a_catalog_job_typed_from_its_signature():
    greet_job, divide_job = get_job(GREET), get_job(divide.module_path)
    assert [(p.name, p.kind, p.required) for p in greet_job.params] == [
        ("name", str, True), ("shout", bool, False),
    ]  # fmt: skip
    assert [(p.name, p.kind) for p in divide_job.params] == [("x", float), ("y", float)]
    assert greet_job.group == "Demo: Django Tasks API"
    assert greet_job.description.startswith("Return a greeting")


def test_a_context_parameter_is_not_a_catalog_parameter():
    assert [p.name for p in get_job("apps.demo.tasks_api.tasks.whoami").params] == ["note"]


def test_parameters_the_catalog_cannot_type_take_json():
    schema = get_job(TALLY).json_schema()
    assert schema["required"] == ["counts"]
    # `counts: dict`: a JSON object; `extra` (no annotation): any JSON value.
    assert schema["properties"]["counts"] == {"type": "object", "title": "Counts"}
    assert schema["properties"]["extra"] == {"description": "any JSON value", "title": "Extra"}


@database
def test_the_jobs_page_lists_tasks_api_tasks_and_their_form_says_which_take_json(root_client):
    assert GREET in root_client.get("/jobs/").content.decode()
    page = root_client.get(f"/jobs/{TALLY}/").content.decode()
    assert page.count("takes JSON") == 2


@database
def test_bad_json_for_a_json_parameter_is_a_form_error_and_nothing_starts(root_client):
    data = {"counts": "{not json", "idempotency_key": uuid.uuid4()}
    response = root_client.post(f"/jobs/{TALLY}/", data)
    assert response.status_code == 200
    assert "counts" in response.context["form"].errors
    assert not Run.objects.exists()


@with_worker
def test_a_task_started_from_its_form_runs_on_the_worker_and_shows_on_runs(
    root_client, celery_worker
):
    data = {"counts": '{"a": 2, "b": 3}', "extra": "[10]", "idempotency_key": uuid.uuid4()}
    response = root_client.post(f"/jobs/{TALLY}/", data)
    assert response.status_code == 302
    run = wait_for(lambda: finished(Run.objects.get()))
    assert (run.state, run.source, run.parameters) == (
        State.SUCCEEDED, Source.WEB, {"counts": {"a": 2, "b": 3}, "extra": [10]},
    )  # fmt: skip
    assert tally.get_result(run.task_id).return_value == 15
    listing = root_client.get("/runs/").content.decode()
    assert TALLY in listing and "web" in listing


@with_worker
def test_a_task_started_through_the_api_runs_and_reads_back(celery_worker):
    client = token_client(make_user("alice", jobs=(GREET,)))
    started = client.post(f"/api/jobs/{GREET}/runs", {"parameters": {"name": "Ada"}},
                          content_type="application/json")  # fmt: skip
    assert started.status_code == 201
    run = wait_for(lambda: finished(Run.objects.get(pk=started.json()["id"])))
    body = client.get(f"/api/runs/{run.pk}").json()
    assert (body["state"], body["result"], body["source"]) == ("succeeded", "Hello, Ada!", "api")


@database
def test_the_api_refuses_bad_parameters_for_a_task_with_422():
    client = token_client(make_user("alice", jobs=(GREET,)))
    response = client.post(f"/api/jobs/{GREET}/runs", {"parameters": {"nme": "Ada"}},
                           content_type="application/json")  # fmt: skip
    assert response.status_code == 422
    assert not Run.objects.exists()


@with_worker
def test_a_task_run_from_the_cli_waits_and_prints_its_result(celery_worker):
    code, out, _ = jobs("run", GREET, "name=Ada", "shout=true", "--wait")
    assert (code, out.splitlines()[-1]) == (0, "HELLO, ADA!")
    assert Run.objects.get().source == Source.CLI


@database
def test_the_cli_refuses_a_task_parameter_it_cannot_read_with_status_2():
    code, _, error = jobs("run", TALLY, "counts={oops")
    assert code == 2 and "counts" in error
    assert not Run.objects.exists()


@database
def test_a_task_can_be_scheduled_in_the_admin_with_typed_parameters(root_client):
    url = reverse("admin:django_celery_beat_periodictask_add")
    data = form_data(name="greet nightly", regtask=GREET, **{"param-name": "Ada"})
    response = root_client.post(url, {**data, "minute": "0", "hour": "3"})
    assert response.status_code == 302, response.context["adminform"].form.errors
    task = PeriodicTask.objects.get(name="greet nightly")
    assert task.task == GREET
    assert json.loads(task.kwargs) == {"name": "Ada", "shout": False}


@database
def test_the_api_takes_any_json_value_for_a_json_parameter():
    client = token_client(make_user("alice", jobs=(TALLY,)))
    parameters = {"counts": {"a": 1}, "extra": [2, 3]}
    response = client.post(f"/api/jobs/{TALLY}/runs", {"parameters": parameters},
                           content_type="application/json")  # fmt: skip
    assert response.status_code == 201
    assert Run.objects.get().parameters == {"counts": {"a": 1}, "extra": [2, 3]}


@database
def test_a_json_string_typed_in_the_form_stays_a_string(root_client):
    data = {"counts": '{"a": 1}', "extra": '"ab"', "idempotency_key": uuid.uuid4()}
    assert root_client.post(f"/jobs/{TALLY}/", data).status_code == 302
    assert Run.objects.get().parameters == {"counts": {"a": 1}, "extra": "ab"}
