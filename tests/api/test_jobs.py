"""Listing jobs and starting runs through the API: validation before anything is recorded."""

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from apps.jobs.models import Run, Source, State
from tests.api.helpers import ADD, COUNTDOWN, token_client
from tests.helpers import make_superuser, make_user

pytestmark = pytest.mark.django_db


def post_json(client: Client, url: str, body, **kw):
    return client.post(url, body, content_type="application/json", **kw)


def test_the_job_list_holds_only_the_jobs_the_caller_may_run_with_their_schema():
    jobs = token_client(make_user("alice", jobs=(ADD,))).get("/api/jobs").json()
    assert [job["name"] for job in jobs] == [ADD]
    (add,) = jobs
    assert add["title"] == "Add two numbers" and add["group"] == "Demo"
    assert add["parameters"]["properties"]["x"]["type"] == "integer"
    assert add["parameters"]["required"] == ["x", "y"]


def test_a_superuser_sees_every_job():
    names = {job["name"] for job in token_client(make_superuser()).get("/api/jobs").json()}
    assert {ADD, COUNTDOWN} <= names


def test_one_job_is_read_by_its_dotted_name():
    response = token_client(make_user("alice", jobs=(COUNTDOWN,))).get(f"/api/jobs/{COUNTDOWN}")
    assert response.status_code == 200
    assert response.json()["cancellable"] is True


def test_an_unknown_job_is_a_json_404():
    client = token_client(make_superuser())
    assert client.get("/api/jobs/no.such.job").status_code == 404
    response = post_json(client, "/api/jobs/no.such.job/runs", {"parameters": {}})
    assert response.status_code == 404
    assert response.json()["detail"]


def test_a_job_the_caller_may_not_run_is_403_and_starts_nothing():
    client = token_client(make_user("bob", jobs=(COUNTDOWN,)))
    assert client.get(f"/api/jobs/{ADD}").status_code == 403
    response = post_json(client, f"/api/jobs/{ADD}/runs", {"parameters": {"x": 1, "y": 2}})
    assert response.status_code == 403
    assert response.json()["detail"] == "You may not run this job."
    assert not Run.objects.exists()


def test_starting_a_run_answers_201_with_the_recorded_run():
    alice = make_user("alice", jobs=(ADD,))
    response = post_json(
        token_client(alice), f"/api/jobs/{ADD}/runs", {"parameters": {"x": "4", "y": 5}}
    )
    assert response.status_code == 201
    body = response.json()
    run = Run.objects.get()
    assert body["id"] == run.pk and body["job"] == ADD
    assert body["parameters"] == run.parameters == {"x": 4, "y": 5}
    assert (run.source, run.requested_by, body["requested_by"]) == (Source.API, alice, "alice")
    assert body["state"] in {State.QUEUED, State.PENDING_SEND}


def test_starting_a_run_reads_no_stored_result_of_a_run_not_started_yet():
    client = token_client(make_user("alice", jobs=(ADD,)))
    with CaptureQueriesContext(connection) as queries:
        response = post_json(client, f"/api/jobs/{ADD}/runs", {"parameters": {"x": 1, "y": 2}})
    assert response.status_code == 201 and response.json()["result"] is None
    assert [q["sql"] for q in queries.captured_queries if "celery_results" in q["sql"]] == []


def test_bad_parameters_get_422_naming_each_field_and_record_nothing():
    client = token_client(make_user("alice", jobs=(ADD,)))
    response = post_json(client, f"/api/jobs/{ADD}/runs", {"parameters": {"x": "four", "z": 1}})
    assert response.status_code == 422
    body = response.json()
    assert set(body["errors"]) == {"z"}  # unknown parameters are refused first
    response = post_json(client, f"/api/jobs/{ADD}/runs", {"parameters": {"x": "four"}})
    assert set(response.json()["errors"]) == {"x", "y"}
    assert "x:" in response.json()["detail"]
    assert not Run.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"parameters": [1, 2]}, "parameters"),
        ({"parameters": {}, "extra": 1}, "extra"),
        ({"idempotency_key": ""}, "idempotency_key"),
        ([], "body"),
    ],
)
def test_a_malformed_request_gets_422_naming_the_field(body, field):
    client = token_client(make_user("alice", jobs=(ADD,)))
    response = post_json(client, f"/api/jobs/{ADD}/runs", body)
    assert response.status_code == 422
    assert field in response.json()["errors"], response.json()
    assert not Run.objects.exists()


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b'{"parameters": {"x": NaN, "y": 1}}',
        b'{"parameters": {"x": "\\ud800"}}',
        b"[" * 100_000,
        b"\xff\xfe",
    ],
)
def test_an_unparseable_body_gets_a_json_400(raw):
    client = token_client(make_user("alice", jobs=(ADD,)))
    response = post_json(client, f"/api/jobs/{ADD}/runs", raw)
    assert response.status_code == 400
    assert response.json()["detail"]
    assert not Run.objects.exists()


def test_a_lone_surrogate_in_the_body_gets_a_400_saying_what_and_where():
    client = token_client(make_user("alice", jobs=(ADD,)))
    raw = b'{"parameters": {"x": "a\\ud800", "y": 1}}'
    response = post_json(client, f"/api/jobs/{ADD}/runs", raw)
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert "lone surrogate (\\ud800)" in detail and '["parameters"]["x"]' in detail, detail


def test_an_oversized_body_gets_a_json_413(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    client = token_client(make_user("alice", jobs=(ADD,)))
    body = {"parameters": {"x": "1" * 2000, "y": 1}}
    response = post_json(client, f"/api/jobs/{ADD}/runs", body)
    assert response.status_code == 413
    assert response.json()["detail"] == "The request body is too large."
    assert not Run.objects.exists()


def test_a_100000_item_list_is_refused_with_a_message_naming_the_parameter():
    client = token_client(make_superuser())
    response = post_json(
        client, f"/api/jobs/{ADD}/runs", {"parameters": {"x": list(range(100_000)), "y": 1}}
    )
    assert response.status_code == 422 and "x" in response.json()["errors"]


def test_repeating_an_idempotency_key_returns_the_first_run():
    client = token_client(make_user("alice", jobs=(ADD,)))
    body = {"parameters": {"x": 1, "y": 2}, "idempotency_key": "nightly-2026-01-01"}
    first = post_json(client, f"/api/jobs/{ADD}/runs", body).json()
    second = post_json(client, f"/api/jobs/{ADD}/runs", body).json()
    assert first["id"] == second["id"]
    assert Run.objects.count() == 1


def test_idempotency_keys_of_different_callers_do_not_collide():
    body = {"parameters": {"x": 1, "y": 2}, "idempotency_key": "same"}
    alice_run = post_json(
        token_client(make_user("alice", jobs=(ADD,))), f"/api/jobs/{ADD}/runs", body
    ).json()
    bob_run = post_json(
        token_client(make_user("bob", jobs=(ADD,))), f"/api/jobs/{ADD}/runs", body
    ).json()
    assert alice_run["id"] != bob_run["id"]
    assert bob_run["requested_by"] == "bob"


# A list parameter keeps its item type ---------------------------------------------------

TOTAL = "apps.demo.tasks.total"


def test_the_schema_of_a_list_of_integers_says_its_items_are_bounded_integers():
    job = token_client(make_user("alice", jobs=(TOTAL,))).get(f"/api/jobs/{TOTAL}").json()
    numbers = job["parameters"]["properties"]["numbers"]
    assert numbers["type"] == "array"
    assert numbers["items"] == {"type": "integer", "minimum": -(2**53 - 1),
                                "maximum": 2**53 - 1}  # fmt: skip


def test_a_list_of_integers_is_recorded_as_integers():
    client = token_client(make_user("alice", jobs=(TOTAL,)))
    response = post_json(client, f"/api/jobs/{TOTAL}/runs", {"parameters": {"numbers": [1, 2, 3]}})
    assert response.status_code == 201
    assert Run.objects.get().parameters == {"numbers": [1, 2, 3]}


@pytest.mark.parametrize(
    ("numbers", "message"),
    [
        ([1, 2, True], "numbers: item 3: expected a number, got true"),
        ([1, "two"], "numbers: item 2: Enter a whole number."),
        ([2**60], "numbers: item 1: Ensure this value is less than or equal to 9007199254740991."),
        ([1, [2]], "numbers: item 2: expected a value, not a list or object"),
    ],
)
def test_a_bad_item_of_a_list_is_refused_naming_the_parameter_and_the_item(numbers, message):
    client = token_client(make_user("alice", jobs=(TOTAL,)))
    response = post_json(client, f"/api/jobs/{TOTAL}/runs", {"parameters": {"numbers": numbers}})
    assert response.status_code == 422
    assert list(response.json()["errors"]) == ["numbers"]
    assert response.json()["detail"] == f"Invalid parameters: {message}"
    assert not Run.objects.exists()
