"""Many runs at once: retry, cancel, discard a whole filtered set, after a preview count
and a confirmation, from /runs/, the API and the CLI (no worker needed here: what is
sent is checked in tests/jobs/test_bulk_with_worker.py)."""

import re

import pytest

from apps.jobs import bulk
from apps.jobs.models import Run, Source, State
from tests.api.helpers import token_client
from tests.helpers import make_run, make_superuser, make_user
from tests.jobs.test_cli import jobs

pytestmark = pytest.mark.django_db

ADD = "apps.demo.tasks.add"
COUNTDOWN = "apps.demo.tasks.countdown"


@pytest.fixture(autouse=True)
def no_broker(monkeypatch):
    """Re-runs are recorded; their messages are not sent (no worker in these tests)."""
    monkeypatch.setattr("apps.jobs.dispatch.send", lambda run, options=None: False)


def make_failures(n: int, job_name: str = ADD, **kw) -> list[Run]:
    kw.setdefault("parameters", {"x": 1, "y": 2})
    return [make_run(job_name, state=State.FAILED, **kw) for _ in range(n)]


def confirm(client, action: str, query: str = "") -> tuple[int, dict]:
    """GET the confirmation page: (count shown, the form's hidden fields)."""
    page = client.get(f"/runs/bulk/?action={action}&{query}")
    assert page.status_code == 200, page.content
    fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', page.content.decode()))
    return page.context["count"], fields


def post(client, fields: dict):
    fields = {k: v.replace("&amp;", "&") for k, v in fields.items()}
    return client.post("/runs/bulk/", fields)


def test_retry_all_failed_of_a_filter_shows_the_count_then_retries_exactly_those(client):
    chosen = make_failures(3, parameters={"x": 5, "y": 2})
    make_failures(2, parameters={"x": 6, "y": 2})
    make_run(ADD, state=State.SUCCEEDED, parameters={"x": 5, "y": 2})
    root = make_superuser()
    client.force_login(root)

    count, fields = confirm(client, "retry", "param.x=5")
    assert count == 3
    response = post(client, fields)

    assert response.status_code == 302
    assert Run.objects.filter(rerun_of__in=chosen).count() == 3
    assert Run.objects.filter(rerun_of__isnull=False).count() == 3
    for run in chosen:
        run.refresh_from_db()
        assert run.handled_at is not None and run.handled_by == root


def test_the_bulk_bar_links_carry_the_filter_of_the_page(client):
    client.force_login(make_superuser())
    page = client.get("/runs/", {"job": ADD, "param.customer": "5"}).content.decode()
    assert "/runs/bulk/?action=retry&amp;job=apps.demo.tasks.add&amp;param.customer=5" in page


def test_a_set_that_grew_after_the_preview_is_refused_and_nothing_is_done(client):
    make_failures(2)
    client.force_login(make_superuser())
    _, fields = confirm(client, "discard", "state=failed")
    make_failures(1)

    response = post(client, fields)

    assert response.status_code == 409
    assert "grew to 3 runs since 2 were confirmed" in response.content.decode()
    assert response.context["count"] == 3  # the new count, to confirm again
    assert not Run.objects.filter(handled_at__isnull=False).exists()


def test_the_confirmation_acts_on_the_filter_it_carries_not_a_wider_one(client):
    make_failures(2, job_name=ADD)
    make_failures(2, job_name=COUNTDOWN, parameters={"seconds": 1})
    client.force_login(make_superuser())
    count, fields = confirm(client, "discard", f"job={ADD}")
    assert count == 2
    post(client, {**fields, "expected": "2"})
    handled = Run.objects.filter(handled_at__isnull=False)
    assert set(handled.values_list("job_name", flat=True)) == {ADD}


def test_discard_marks_failures_handled_shown_on_the_run_page_and_filterable(client):
    failed = make_failures(2)
    other = make_run(ADD, state=State.SUCCEEDED)
    client.force_login(make_user("ann", jobs=(ADD,)))
    _, fields = confirm(client, "discard", "state=failed")
    post(client, fields)

    page = client.get(f"/runs/{failed[0].pk}/").content.decode()
    assert "Handled" in page and "by ann" in page
    handled = {r.pk for r in client.get("/runs/", {"handled": "yes"}).context["page"].runs}
    assert handled == {r.pk for r in failed}
    assert other.pk not in handled
    assert confirm(client, "retry", "state=failed")[0] == 0  # handled: out of the set


def test_cancel_all_queued_cancels_runs_not_started_and_leaves_running_ones(client):
    queued = [make_run(ADD, state=s) for s in (State.QUEUED, State.PENDING_SEND)]
    running = make_run(ADD, state=State.STARTED)
    client.force_login(make_superuser())
    count, fields = confirm(client, "cancel")
    assert count == 2
    post(client, fields)
    states = Run.objects.filter(pk__in=[q.pk for q in queued]).values_list("state", flat=True)
    assert set(states) == {State.CANCELLED}
    running.refresh_from_db()
    assert running.state == State.STARTED and running.cancel_requested_at is None


def test_runs_of_jobs_the_user_may_not_run_are_skipped_and_counted(client):
    """Bob may run add; he sees his own countdown runs but may not run countdown, and
    does not see alice's countdown runs at all."""
    bob = make_user("bob", jobs=(ADD,))
    alice = make_user("alice", jobs=(ADD, COUNTDOWN))
    adds = make_failures(2)
    own = make_failures(1, job_name=COUNTDOWN, requested_by=bob, parameters={"seconds": 1})
    hers = make_failures(3, job_name=COUNTDOWN, requested_by=alice, parameters={"seconds": 1})
    client.force_login(bob)

    count, fields = confirm(client, "retry", "state=failed")
    assert count == 3  # his own countdown run counts; alice's are not his to see
    response = post(client, fields)

    message = str(next(iter(response.wsgi_request._messages)))
    assert message == "2 of 3 runs retried; 1 skipped (jobs you may not run)."
    assert set(Run.objects.filter(rerun_of__isnull=False).values_list("rerun_of", flat=True)) == {
        r.pk for r in adds
    }
    assert Run.objects.get(pk=own[0].pk).handled_at is None
    assert not Run.objects.filter(pk__in=[r.pk for r in hers], handled_at__isnull=False).exists()


def test_a_retry_whose_stored_parameters_are_refused_is_counted_and_left_unhandled(client):
    bad = make_failures(1, parameters={"x": "not a number", "y": 2})
    make_failures(1)
    client.force_login(make_superuser())
    _, fields = confirm(client, "retry", "state=failed")
    response = post(client, fields)
    message = str(next(iter(response.wsgi_request._messages)))
    assert "1 not retried (parameters no longer valid)" in message
    assert Run.objects.get(pk=bad[0].pk).handled_at is None


@pytest.mark.parametrize(
    ("fields", "status"),
    [
        ({"action": "explode", "query": "", "expected": "1"}, 400),
        ({"action": "retry", "query": "param.x>=1", "expected": "1"}, 400),
        ({"action": "retry", "query": "", "expected": "lots"}, 400),
        ({"action": "retry", "query": "", "expected": "-1"}, 400),
        ({"action": "retry", "query": "colour=red", "expected": "1"}, 400),
    ],
)
def test_a_bad_bulk_request_is_refused_with_a_message(client, fields, status):
    make_failures(1)
    client.force_login(make_superuser())
    response = client.post("/runs/bulk/", fields)
    assert response.status_code == status
    assert "Refused:" in response.content.decode()
    assert not Run.objects.filter(handled_at__isnull=False).exists()


def test_a_large_set_is_handed_to_a_job_whose_run_page_the_user_lands_on(client, monkeypatch):
    monkeypatch.setattr(bulk, "INLINE_LIMIT", 3)
    make_failures(5)
    root = make_superuser()
    client.force_login(root)
    _, fields = confirm(client, "discard", "state=failed")
    response = post(client, fields)
    job_run = Run.objects.get(job_name=bulk.JOB)
    assert response["Location"] == f"/runs/{job_run.pk}/"
    assert job_run.requested_by == root
    assert job_run.parameters == {"action": "discard", "query": "state=failed", "expected": 5}
    assert not Run.objects.filter(handled_at__isnull=False).exists()  # the job does it


# The API ------------------------------------------------------------------------------


def test_the_api_previews_then_acts_and_refuses_a_grown_set_with_409():
    make_failures(2)
    api = token_client(make_superuser())
    preview = api.get("/api/runs/bulk/preview", {"action": "discard", "job": ADD}).json()
    assert preview == {"action": "discard", "count": 2, "query": f"job={ADD}"}
    make_failures(1)
    body = {"action": "discard", "query": preview["query"], "expected": 2}
    grew = api.post("/api/runs/bulk", body, content_type="application/json")
    assert grew.status_code == 409
    body["expected"] = 3
    done = api.post("/api/runs/bulk", body, content_type="application/json")
    assert done.status_code == 200
    assert done.json()["done"] == 3


def test_the_api_counts_runs_of_jobs_the_caller_may_not_run_as_not_permitted():
    bob = make_user("bob", jobs=(ADD,))
    make_failures(1, job_name=COUNTDOWN, requested_by=bob, parameters={"seconds": 1})
    make_failures(1)
    api = token_client(bob)
    body = {"action": "retry", "query": "state=failed", "expected": 2}
    result = api.post("/api/runs/bulk", body, content_type="application/json").json()
    assert (result["done"], result["not_permitted"]) == (1, 1)


@pytest.mark.parametrize(
    "body",
    [
        {"action": "explode", "query": "", "expected": 1},
        {"action": "retry", "query": "param.x>=1", "expected": 1},
        {"action": "retry", "query": "", "expected": -1},
        {"action": "retry", "query": ""},
        {"action": "retry", "query": "state=exploded", "expected": 1},
    ],
)
def test_bad_bulk_requests_get_422_from_the_api(body):
    api = token_client(make_superuser())
    response = api.post("/api/runs/bulk", body, content_type="application/json")
    assert response.status_code == 422, response.content
    assert response.json()["detail"]


def test_a_user_without_any_job_cannot_touch_others_runs_through_the_api():
    make_failures(2)
    nobody = make_user("nobody")
    api = token_client(nobody)
    assert api.get("/api/runs/bulk/preview", {"action": "retry"}).json()["count"] == 0
    body = {"action": "discard", "query": "", "expected": 0}
    assert api.post("/api/runs/bulk", body, content_type="application/json").json()["done"] == 0
    assert not Run.objects.filter(handled_at__isnull=False).exists()


# The CLI ------------------------------------------------------------------------------


def test_the_cli_previews_without_yes_and_acts_with_it():
    make_failures(2)
    make_run(ADD, state=State.QUEUED)
    code, out, _ = jobs("runs", "--state", "failed", "--discard")
    assert (code, out.strip()) == (0, "2 runs would be discarded; add --yes to do it")
    assert not Run.objects.filter(handled_at__isnull=False).exists()
    code, out, _ = jobs("runs", "--state", "failed", "--discard", "--yes")
    assert (code, out.strip()) == (0, "2 of 2 runs discarded.")
    assert Run.objects.filter(handled_at__isnull=False).count() == 2
    assert jobs("runs", "--cancel", "--yes")[1].strip() == "1 of 1 runs cancelled."


def test_the_cli_refuses_with_exit_1_when_more_runs_match_than_expected():
    make_failures(3)
    code, _, err = jobs("runs", "--retry", "--yes", "--expect", "2")
    assert code == 1
    assert "grew to 3 runs since 2 were confirmed" in err
    assert not Run.objects.filter(rerun_of__isnull=False).exists()


def test_the_cli_refuses_two_actions_at_once_with_exit_2():
    assert jobs("runs", "--retry", "--discard", "--yes")[0] == 2


@pytest.mark.parametrize(
    "args",
    [
        ("--limit", "0"), ("--limit", "99999999999999999999"), ("--limit", "x"),
        ("--retry", "--yes", "--expect", "-1"), ("--retry", "--yes", "--expect", "1e9"),
        ("--state", "failed\x00"), ("--job", "a\x1bb"), ("--handled", "maybe"),
        ("--from", "2030-02-30"), ("--to", "0001-01-01"),
    ],
)  # fmt: skip
def test_bad_cli_options_exit_2_with_one_line_and_do_nothing(args):
    make_failures(1)
    code, _, err = jobs("runs", *args)
    assert code == 2, err
    assert "\n" not in err.strip() and len(err) < 300
    assert not Run.objects.filter(handled_at__isnull=False).exists()


def test_who_handled_a_failure_shows_in_the_api_and_jobs_status():
    run = make_failures(1)[0]
    ann = make_user("ann", jobs=(ADD,))
    Run.objects.filter(pk=run.pk).mark_handled(ann)
    shown = token_client(make_superuser()).get(f"/api/runs/{run.pk}").json()
    assert shown["handled_by"] == "ann" and shown["handled_at"]
    listed = token_client(make_superuser("root2")).get("/api/runs").json()["items"][0]
    assert listed["handled_by"] == "ann"
    assert "handled:      by ann at" in jobs("status", str(run.pk))[1]


# The bulk job, run with no person behind it -------------------------------------------


def bulk_job_run(source: Source, user=None, action: str = "cancel", query: str = "") -> Run:
    """The job's run as each door records it (`requested_by` None for a schedule's)."""
    params = {"action": action, "query": query, "expected": 500}
    return make_run(bulk.JOB, state=State.STARTED, source=source, requested_by=user,
                    parameters=params)  # fmt: skip


def test_a_scheduled_bulk_action_touches_no_run_and_says_why():
    victim = make_run(ADD, state=State.QUEUED, requested_by=make_superuser())
    own = bulk_job_run(Source.SCHEDULE, query=f"job={ADD}")
    with pytest.raises(PermissionError, match=r"source: schedule\) has none"):
        bulk.run_as_job(own.task_id, "cancel", f"job={ADD}", 500)
    victim.refresh_from_db()
    assert victim.state == State.QUEUED


def test_a_bulk_action_from_the_cli_or_a_shell_acts_on_every_run():
    root = make_superuser()
    queued = [make_run(ADD, state=State.QUEUED, requested_by=root) for _ in range(2)]
    for source in (Source.CLI, Source.SHELL):
        own = bulk_job_run(source, query=f"job={ADD}")
        bulk.run_as_job(own.task_id, "cancel", f"job={ADD}", 500)
    assert {run.state for run in Run.objects.filter(pk__in=[r.pk for r in queued])} == {
        State.CANCELLED
    }


def test_a_bulk_action_whose_person_was_deleted_touches_no_run():
    victim = make_run(ADD, state=State.QUEUED)
    own = bulk_job_run(Source.WEB, query=f"job={ADD}")
    with pytest.raises(PermissionError, match="no longer exists"):
        bulk.run_as_job(own.task_id, "cancel", f"job={ADD}", 500)
    victim.refresh_from_db()
    assert victim.state == State.QUEUED
