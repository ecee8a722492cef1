"""/runs/failed/: runs whose retries ran out, not handled, grouped by exception type and
exact message, with counts, last seen, the jobs involved, and "retry all of this group"
through the bulk action's own path."""

import datetime as dt
import json
import uuid

import pytest
from django.utils import timezone
from django_celery_results.models import TaskResult

from apps.jobs.models import Run, State
from tests.helpers import make_run, make_superuser, make_user

pytestmark = pytest.mark.django_db

ADD = "apps.demo.tasks.add"
COUNTDOWN = "apps.demo.tasks.countdown"


def make_failure(job_name: str = ADD, exc_type: str = "ValueError", message="bad input",
                 ago: int = 0, **kw) -> Run:  # fmt: skip
    """A failed run and the result Celery stores for it (kombu's JSON of the error)."""
    kw.setdefault("parameters", {"x": 1, "y": 2} if job_name == ADD else {"seconds": 1})
    finished = timezone.now() - dt.timedelta(minutes=ago)
    run = make_run(job_name, state=State.FAILED, finished_at=finished, **kw)
    error = {"exc_type": exc_type, "exc_message": [message], "exc_module": "builtins"}
    TaskResult.objects.create(
        task_id=run.task_id, task_name=job_name, status="FAILURE", result=json.dumps(error),
        content_type="application/json",
    )  # fmt: skip
    return run


def groups(client) -> list[tuple[str, str, int, set[str]]]:
    found = client.get("/runs/failed/").context["groups"]
    return [(g.error_type, g.message, g.count, g.jobs) for g in found]


def test_failures_are_grouped_by_type_and_exact_message_largest_group_first(client):
    for _ in range(3):
        make_failure(ADD, "ValueError", "bad input")
    make_failure(COUNTDOWN, "ValueError", "bad input", ago=5)
    make_failure(ADD, "ValueError", "bad input 2")
    make_failure(ADD, "KeyError", "bad input")
    make_run(ADD, state=State.SUCCEEDED)
    client.force_login(make_superuser())
    assert groups(client) == [
        ("ValueError", "bad input", 4, {ADD, COUNTDOWN}),
        ("KeyError", "bad input", 1, {ADD}),
        ("ValueError", "bad input 2", 1, {ADD}),
    ]


def test_a_group_shows_when_it_was_last_seen(client):
    make_failure(ago=60)
    newest = make_failure(ago=1)
    client.force_login(make_superuser())
    (group,) = client.get("/runs/failed/").context["groups"]
    assert group.last_seen == newest.finished_at


def test_handled_failures_and_runs_still_retrying_are_not_failed_for_good(client):
    make_failure(handled_at=timezone.now())
    make_run(ADD, state=State.RETRYING)
    client.force_login(make_superuser())
    assert groups(client) == []
    assert "No failures waiting." in client.get("/runs/failed/").content.decode()


def test_a_group_lists_only_runs_the_reader_may_see(client):
    make_failure(ADD)
    make_failure(COUNTDOWN)
    client.force_login(make_user("ann", jobs=(ADD,)))
    assert [(t, n, jobs) for t, _, n, jobs in groups(client)] == [("ValueError", 1, {ADD})]


def test_retry_all_of_a_group_counts_and_retries_that_group_only(client, monkeypatch):
    monkeypatch.setattr("apps.jobs.dispatch.send", lambda run, options=None: False)
    mine = [make_failure(message='quote " and {"exc_type": "X"}') for _ in range(2)]
    make_failure(message="another")
    make_failure(exc_type="X", message="quote")
    client.force_login(make_superuser())
    (group,) = [g for g in client.get("/runs/failed/").context["groups"] if g.count == 2]

    confirm = client.get("/runs/bulk/", {"action": "retry", **group.filters})
    assert confirm.context["count"] == 2
    response = client.post("/runs/bulk/", {"action": "retry", "query": confirm.context["query"],
                                           "expected": "2"})  # fmt: skip

    assert response.status_code == 302
    assert set(Run.objects.filter(rerun_of__isnull=False).values_list("rerun_of", flat=True)) == {
        run.pk for run in mine
    }
    assert sorted(n for _, _, n, _ in groups(client)) == [1, 1]


def test_a_failure_without_a_stored_error_is_its_own_group_without_a_retry_button(client):
    make_run(ADD, state=State.FAILED, finished_at=timezone.now())
    TaskResult.objects.create(task_id=str(uuid.uuid4()), status="FAILURE", result="not json")
    client.force_login(make_superuser())
    page = client.get("/runs/failed/").content.decode()
    assert groups(client) == [("", "", 1, {ADD})]
    assert "no error stored" in page and "action=retry" not in page


def test_the_dashboard_no_longer_lists_a_failure_once_it_is_handled(client):
    run = make_failure()
    client.force_login(make_superuser())
    assert "bad input" in client.get("/dashboard/failures/").content.decode()
    Run.objects.filter(pk=run.pk).mark_handled()
    assert "bad input" not in client.get("/dashboard/failures/").content.decode()


def test_a_page_holds_at_most_max_rows_errors_the_most_recently_seen_first(client, monkeypatch):
    from apps.jobs import failures

    monkeypatch.setattr(failures, "MAX_ROWS", 2)
    for minutes, message in [(30, "oldest"), (20, "older"), (10, "newer")]:
        make_failure(message=message, ago=minutes)
    client.force_login(make_superuser())
    assert {message for _, message, _, _ in groups(client)} == {"older", "newer"}


def test_only_the_newest_failures_are_grouped_and_the_page_says_so(client, monkeypatch):
    from apps.jobs import failures

    monkeypatch.setattr(failures, "NEWEST", 2)
    make_failure(message="old", ago=60)
    make_failure(message="new", ago=1)
    make_failure(message="new", ago=2)
    client.force_login(make_superuser())
    response = client.get("/runs/failed/")
    assert [(g.message, g.count) for g in response.context["groups"]] == [("new", 2)]
    assert "3 failures waiting; the groups below count the newest 2" in " ".join(
        response.content.decode().split()
    )


def test_the_api_lists_the_groups_and_a_groups_query_retries_it_through_bulk(monkeypatch):
    from tests.api.helpers import token_client

    monkeypatch.setattr("apps.jobs.dispatch.send", lambda run, options=None: False)
    for _ in range(2):
        make_failure(message="db down")
    make_failure(COUNTDOWN, message="other")
    api = token_client(make_superuser())
    groups = api.get("/api/runs/failed", {"job": ADD}).json()
    assert [(g["error_type"], g["message"], g["count"], g["jobs"]) for g in groups] == [
        ("ValueError", "db down", 2, [ADD])
    ]
    body = {"action": "retry", "query": groups[0]["query"], "expected": 2}
    done = api.post("/api/runs/bulk", body, content_type="application/json").json()
    assert done["done"] == 2
    assert api.get("/api/runs/failed", {"job": ADD}).json() == []
    assert api.get("/api/runs/failed", {"colour": "red"}).status_code == 422


def test_the_cli_lists_the_groups():
    from tests.jobs.test_cli import jobs

    for _ in range(2):
        make_failure(message="db down")
    code, out, _ = jobs("runs", "--failures")
    assert code == 0
    assert out.split()[0] == "2" and "ValueError: db down" in out and f"[{ADD}]" in out
    listed = json.loads(jobs("runs", "--failures", "--json")[1])
    assert listed[0]["filters"]["error_message"] == "db down"
    assert jobs("runs", "--failures", "--retry")[0] == 2  # one thing at a time


def test_on_postgresql_the_groups_and_their_count_read_only_the_failures_index():
    """The newest failures and their count come from run_unhandled_failures alone (an
    index-only scan once vacuumed: at 1,000,000 runs, bench.admin_pages)."""
    from django.db import connection

    from apps.jobs.failures import NEWEST
    from apps.jobs.run_filters import read

    if connection.vendor != "postgresql":
        pytest.skip("covering indexes (and EXPLAIN's wording) are PostgreSQL's")
    make_failure()
    handled = make_failure(message="dealt with")
    Run.objects.filter(pk=handled.pk).mark_handled(label="ops")
    failures = read([]).apply(Run.objects.all()).unhandled_failures()  # as the page reads
    newest = failures.order_by("-queued_at", "-id")[:NEWEST].values("task_id", "job_name",
                                                                    "finished_at")  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE jobs_run")
        for scan in ("seqscan", "bitmapscan"):  # a small table: only the plan's shape is asked
            cursor.execute(f"SET LOCAL enable_{scan} = off")
        for query in (newest.query, failures.values("pk").query):
            sql, params = query.sql_with_params()
            cursor.execute(f"EXPLAIN {sql}", params)
            plan = "\n".join(row[0] for row in cursor.fetchall())
            assert "using run_unhandled_failures" in plan, plan
    assert failures.count() == 1
