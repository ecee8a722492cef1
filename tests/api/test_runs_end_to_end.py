"""Runs started through the API and carried out by the real worker (Redis + django-db)."""

import pytest

from apps.jobs.models import Run, State
from tests.api.helpers import ADD, COUNTDOWN, token_client
from tests.helpers import make_user, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def read_when(client, run_id: int, predicate, timeout: float = 20.0) -> dict:
    def check():
        body = client.get(f"/api/runs/{run_id}").json()
        return body if predicate(body) else None

    return wait_for(check, timeout=timeout, interval=0.1)


def finished(body: dict) -> bool:
    return body["state"] in {State.SUCCEEDED, State.FAILED, State.CANCELLED, State.SKIPPED}


def test_a_run_started_through_the_api_succeeds_and_its_result_is_readable(celery_worker):
    client = token_client(make_user("alice", jobs=(ADD,)))
    started = client.post(
        f"/api/jobs/{ADD}/runs", {"parameters": {"x": 4, "y": 5}}, content_type="application/json"
    )
    assert started.status_code == 201
    body = read_when(client, started.json()["id"], finished)
    assert body["state"] == State.SUCCEEDED
    assert body["result"] == 9
    assert body["traceback"] is None
    assert body["worker"] and body["source"] == "api" and body["requested_by"] == "alice"
    assert body["wait_seconds"] is not None and body["run_seconds"] is not None


def test_cancelling_a_running_countdown_through_the_api_stops_it(celery_worker):
    client = token_client(make_user("alice", jobs=(COUNTDOWN,)))
    run_id = client.post(
        f"/api/jobs/{COUNTDOWN}/runs",
        {"parameters": {"seconds": 30}},
        content_type="application/json",
    ).json()["id"]
    read_when(client, run_id, lambda body: (body["progress"]["done"] or 0) >= 1)
    response = client.post(f"/api/runs/{run_id}/cancel")
    assert response.status_code == 202
    assert response.json()["cancel_requested_at"] is not None
    body = read_when(client, run_id, finished, timeout=15)
    assert body["state"] == State.CANCELLED
    assert body["progress"]["done"] < 30
    assert client.post(f"/api/runs/{run_id}/cancel").status_code == 409


def test_retry_starts_a_new_run_linked_to_the_old_one(celery_worker):
    client = token_client(make_user("alice", jobs=(ADD,)))
    first = client.post(
        f"/api/jobs/{ADD}/runs", {"parameters": {"x": 1, "y": 1}}, content_type="application/json"
    ).json()
    read_when(client, first["id"], finished)
    response = client.post(f"/api/runs/{first['id']}/retry")
    assert response.status_code == 201
    again = response.json()
    assert again["id"] != first["id"] and again["rerun_of"] == first["id"]
    assert again["parameters"] == {"x": 1, "y": 1}
    assert read_when(client, again["id"], finished)["result"] == 2
    assert Run.objects.get(pk=again["id"]).source == "api"
