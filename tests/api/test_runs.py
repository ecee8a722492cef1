"""Reading, listing, cancelling and retrying runs: who may see and touch which run."""

import json

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django_celery_results.models import TaskResult

from apps.jobs.models import Run, Source, State
from tests.api.helpers import ADD, COUNTDOWN, make_run, token_client
from tests.helpers import make_superuser, make_user

pytestmark = pytest.mark.django_db


def test_runs_are_listed_newest_first_and_paged_by_cursor():
    runs = [make_run() for _ in range(5)]
    client = token_client(make_superuser())
    page = client.get("/api/runs?limit=2").json()
    assert [item["id"] for item in page["items"]] == [runs[4].pk, runs[3].pk]
    assert page["next_before"] == runs[3].pk
    page = client.get(page["next"]).json()
    assert [item["id"] for item in page["items"]] == [runs[2].pk, runs[1].pk]
    page = client.get(page["next"]).json()
    assert [item["id"] for item in page["items"]] == [runs[0].pk]
    assert page["next"] is None and page["next_before"] is None


def test_runs_are_filtered_by_job_state_and_source():
    wanted = make_run(job_name=COUNTDOWN, state=State.FAILED, source=Source.CLI)
    make_run(job_name=COUNTDOWN, state=State.FAILED, source=Source.WEB)
    make_run(job_name=COUNTDOWN, state=State.SUCCEEDED, source=Source.CLI)
    make_run(job_name=ADD, state=State.FAILED, source=Source.CLI)
    client = token_client(make_superuser())
    page = client.get(f"/api/runs?job={COUNTDOWN}&state=failed&source=cli&limit=1").json()
    assert [item["id"] for item in page["items"]] == [wanted.pk]
    assert page["next"] is None


def test_the_next_link_keeps_the_filters():
    for _ in range(3):
        make_run(state=State.FAILED)
    page = token_client(make_superuser()).get("/api/runs?state=failed&limit=1").json()
    assert "state=failed" in page["next"] and "limit=1" in page["next"]


def test_states_separated_by_commas_filter_as_on_the_runs_page():
    failed, queued = make_run(state=State.FAILED), make_run(state=State.QUEUED)
    make_run(state=State.SUCCEEDED)
    root = make_superuser()
    page = token_client(root).get("/api/runs?state=failed,queued").json()
    assert {item["id"] for item in page["items"]} == {failed.pk, queued.pk}
    browser = Client()
    browser.force_login(root)
    on_the_page = browser.get("/runs/?state=failed,queued").context["page"].runs
    assert {run.pk for run in on_the_page} == {failed.pk, queued.pk}


def test_bad_filters_get_422_naming_the_filter():
    client = token_client(make_superuser())
    for query, field in [
        ("state=lost", "state"),
        ("limit=0", "limit"),
        ("before=-1", "before"),
        (f"before={2**70}", "before"),
        ("job=a%00b", "job"),
        ("job=" + "j" * 256, "job"),
        ("state=failed,lost", "state"),
        ("source=nowhere", "source"),
        ("date_from=2026-13-01", "date_from"),
        ("handled=maybe", "handled"),
    ]:
        response = client.get(f"/api/runs?{query}")
        assert response.status_code == 422, query
        assert field in response.json()["errors"], query


def test_a_user_sees_only_runs_of_jobs_they_may_run_and_their_own():
    alice = make_user("alice", jobs=(ADD,))
    visible = make_run(job_name=ADD)
    own = make_run(job_name=COUNTDOWN, requested_by=alice)
    hidden = make_run(job_name=COUNTDOWN)
    client = token_client(alice)
    ids = {item["id"] for item in client.get("/api/runs").json()["items"]}
    assert ids == {visible.pk, own.pk}
    assert client.get(f"/api/runs/{hidden.pk}").status_code == 404
    assert client.post(f"/api/runs/{hidden.pk}/cancel").status_code == 404
    assert client.post(f"/api/runs/{hidden.pk}/retry").status_code == 404
    assert client.get(f"/api/runs/{hidden.pk}").json() == client.get("/api/runs/999999").json()


def test_a_run_of_a_job_the_user_may_no_longer_run_cannot_be_cancelled_or_retried():
    alice = make_user("alice")
    own = make_run(job_name=COUNTDOWN, requested_by=alice, state=State.QUEUED)
    client = token_client(alice)
    assert client.get(f"/api/runs/{own.pk}").status_code == 200
    assert client.post(f"/api/runs/{own.pk}/cancel").status_code == 403
    assert client.post(f"/api/runs/{own.pk}/retry").status_code == 403
    own.refresh_from_db()
    assert own.state == State.QUEUED and Run.objects.count() == 1


def test_cancelling_a_queued_run_cancels_it_at_once():
    run = make_run(state=State.QUEUED)
    response = token_client(make_user("alice", jobs=(ADD,))).post(f"/api/runs/{run.pk}/cancel")
    assert response.status_code == 202
    assert response.json()["state"] == State.CANCELLED


def test_cancelling_a_finished_run_is_a_409():
    run = make_run(state=State.SUCCEEDED)
    response = token_client(make_superuser()).post(f"/api/runs/{run.pk}/cancel")
    assert response.status_code == 409


def test_a_failed_run_shows_its_exception_and_traceback_as_data():
    run = make_run(state=State.FAILED)
    TaskResult.objects.create(
        task_id=run.task_id,
        status="FAILURE",
        content_type="application/json",
        content_encoding="utf-8",
        traceback="Traceback ...\nValueError: <script>x</script>",
        result=json.dumps({"exc_type": "ValueError", "exc_message": ["<script>x</script>"]}),
    )
    body = token_client(make_superuser()).get(f"/api/runs/{run.pk}").json()
    assert body["result"]["exc_message"] == ["<script>x</script>"]
    assert body["traceback"].endswith("<script>x</script>")


def test_the_run_list_costs_the_same_queries_for_2_or_40_runs():
    client = token_client(make_user("alice", jobs=(ADD,)))
    make_run(requested_by=make_user("bob"))
    make_run()
    client.get("/api/jobs")  # the token's first use writes its stamp; the next ones do not
    with CaptureQueriesContext(connection) as few:
        client.get("/api/runs")
    for number in range(38):  # each run by another user: `requested_by` must not cost a query
        make_run(requested_by=get_user_model().objects.create(username=f"user{number}"))
    with CaptureQueriesContext(connection) as many:
        assert len(client.get("/api/runs").json()["items"]) == 40
    assert len(many) == len(few)
    assert not any("COUNT(" in query["sql"].upper() for query in many.captured_queries)
