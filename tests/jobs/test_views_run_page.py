"""/runs/<id>/: a run's details, its live part for htmx, and Cancel / Run again."""

import datetime as dt
import json
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest
from django.utils import timezone
from django_celery_results.models import TaskResult

from apps.jobs.models import Run, Source, State
from tests.helpers import make_run, make_superuser, make_user

pytestmark = pytest.mark.django_db

ADD = "apps.demo.tasks.add"
COUNTDOWN = "apps.demo.tasks.countdown"
HTMX = {"HTTP_HX_REQUEST": "true"}


def make_task_result(run: Run, result, status: str = "SUCCESS", **kw) -> TaskResult:
    return TaskResult.objects.create(
        task_id=run.task_id, task_name=run.job_name, status=status,
        result=json.dumps(result), content_type="application/json", content_encoding="utf-8",
        **kw,
    )  # fmt: skip


def finished_run(job_name: str = ADD, **kw) -> Run:
    now = timezone.now()
    kw.setdefault("state", State.SUCCEEDED)
    return make_run(
        job_name, started_at=now - dt.timedelta(seconds=2), finished_at=now, worker="w1@host",
        **kw,
    )  # fmt: skip


@pytest.fixture
def root(client):
    user = make_superuser()
    client.force_login(user)
    return user


def test_the_run_page_shows_who_started_it_from_where_and_its_parameters(client):
    alice = make_user("alice", jobs=(ADD,))
    run = finished_run(parameters={"x": 4, "y": 5}, requested_by=alice, requested_by_label="alice")
    client.force_login(alice)
    page = client.get(f"/runs/{run.pk}/").content.decode()
    assert 'alice <span class="muted">from</span> Web' in page
    assert "&quot;x&quot;: 4" in page and "w1@host" in page
    assert "2.00 s" in page  # run time


def test_a_result_containing_markup_is_shown_escaped(client, root):
    run = finished_run()
    make_task_result(run, {"html": "<script>alert(1)</script>"})
    page = client.get(f"/runs/{run.pk}/").content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert(1)" not in page


def test_a_failed_run_shows_its_traceback_escaped(client, root):
    run = finished_run(state=State.FAILED)
    make_task_result(run, {"exc_type": "ValueError"}, status="FAILURE",
                     traceback='Traceback: ValueError("<b>bad</b>")')  # fmt: skip
    page = client.get(f"/runs/{run.pk}/").content.decode()
    assert "ValueError(&quot;&lt;b&gt;bad&lt;/b&gt;&quot;)" in page


def test_a_running_run_shows_progress_not_the_progress_meta_as_a_result(client, root):
    run = make_run(COUNTDOWN, state=State.PROGRESS, progress_done=3, progress_total=10,
                   progress_message="7 s to go")  # fmt: skip
    make_task_result(run, {"done": 3, "total": 10}, status="PROGRESS")
    response = client.get(f"/runs/{run.pk}/")
    assert b'style="width: 30%"' in response.content and b"7 s to go" in response.content
    assert response.context["result"] is None


def test_the_live_part_polls_while_the_run_is_active(client, root):
    run = make_run(COUNTDOWN, state=State.STARTED)
    partial = client.get(f"/runs/{run.pk}/", **HTMX).content.decode()
    assert 'hx-trigger="every 1s"' in partial
    assert "<html" not in partial


def test_the_live_part_stops_polling_once_the_run_has_finished(client, root):
    run = finished_run(COUNTDOWN)
    partial = client.get(f"/runs/{run.pk}/", **HTMX).content.decode()
    assert 'id="run-live"' in partial
    assert "hx-trigger" not in partial and "hx-get" not in partial


def test_a_run_the_user_may_not_see_is_forbidden_and_tells_nothing(client):
    run = finished_run(COUNTDOWN, parameters={"seconds": 31337})
    make_task_result(run, "secret result")
    client.force_login(make_user("bob", jobs=(ADD,)))
    for response in (client.get(f"/runs/{run.pk}/"), client.get(f"/runs/{run.pk}/", **HTMX)):
        assert response.status_code == 403
        assert b"31337" not in response.content and b"secret" not in response.content


def test_a_missing_run_is_not_found(client, root):
    assert client.get("/runs/999999/").status_code == 404


@pytest.mark.parametrize("action", ["cancel/", "rerun/", "resend/"])
def test_a_run_id_past_64_bits_is_not_found_on_the_page_or_by_its_buttons(client, root, action):
    huge = "99999999999999999999999"
    assert client.get(f"/runs/{huge}/").status_code == 404
    assert client.post(f"/runs/{huge}/{action}").status_code == 404


def test_run_again_starts_a_new_web_run_linked_to_the_old_one(client):
    alice = make_user("alice", jobs=(ADD,))
    old = finished_run(parameters={"x": 1, "y": 2}, source=Source.CLI)
    client.force_login(alice)
    response = client.post(f"/runs/{old.pk}/rerun/", {"idempotency_key": str(uuid.uuid4())})
    new = Run.objects.exclude(pk=old.pk).get()
    assert response["Location"] == f"/runs/{new.pk}/"
    assert (new.rerun_of, new.parameters) == (old, {"x": 1, "y": 2})
    assert (new.source, new.requested_by) == (Source.WEB, alice)


def test_run_again_posted_twice_with_the_same_key_starts_one_run(client, root):
    old = finished_run(parameters={"x": 1, "y": 2})
    key = {"idempotency_key": str(uuid.uuid4())}
    first = client.post(f"/runs/{old.pk}/rerun/", key)
    second = client.post(f"/runs/{old.pk}/rerun/", key)
    assert first["Location"] == second["Location"]
    assert Run.objects.count() == 2


def test_run_again_by_another_user_with_the_same_key_starts_their_own_run(client):
    old = finished_run(parameters={"x": 1, "y": 2})
    key = {"idempotency_key": str(uuid.uuid4())}
    client.force_login(make_user("alice", jobs=(ADD,)))
    first = client.post(f"/runs/{old.pk}/rerun/", key)
    client.force_login(make_user("bob", jobs=(ADD,)))
    second = client.post(f"/runs/{old.pk}/rerun/", key)
    assert first["Location"] != second["Location"]
    assert Run.objects.filter(rerun_of=old).count() == 2


def test_cancel_of_a_queued_run_cancels_it_before_it_starts(client, root):
    run = make_run(COUNTDOWN)
    response = client.post(f"/runs/{run.pk}/cancel/")
    assert response["Location"] == f"/runs/{run.pk}/"
    run.refresh_from_db()
    assert run.state == State.CANCELLED


def test_cancel_is_offered_while_active_and_not_once_finished(client, root):
    active, done = make_run(COUNTDOWN, state=State.PROGRESS), finished_run(COUNTDOWN)
    assert client.get(f"/runs/{active.pk}/").context["can_cancel"]
    assert not client.get(f"/runs/{done.pk}/").context["can_cancel"]


def test_a_running_job_that_cannot_be_cancelled_offers_no_cancel(client, root):
    running_add = make_run(ADD, state=State.STARTED)
    assert not client.get(f"/runs/{running_add.pk}/").context["can_cancel"]


def test_cancel_and_run_again_need_permission_to_run_the_job(client):
    alice = make_user("alice", jobs=(ADD,))
    # alice started it, so she may see it, but she may no longer run countdown
    run = make_run(COUNTDOWN, requested_by=alice)
    client.force_login(alice)
    page = client.get(f"/runs/{run.pk}/")
    assert page.status_code == 200
    assert not page.context["can_cancel"] and not page.context["can_rerun"]
    assert client.post(f"/runs/{run.pk}/cancel/").status_code == 403
    assert client.post(f"/runs/{run.pk}/rerun/").status_code == 403
    run.refresh_from_db()
    assert run.state == State.QUEUED and Run.objects.count() == 1


def test_cancel_and_run_again_are_forbidden_on_runs_the_user_may_not_see(client):
    run = make_run(COUNTDOWN)
    client.force_login(make_user("bob", jobs=(ADD,)))
    assert client.post(f"/runs/{run.pk}/cancel/").status_code == 403
    assert client.post(f"/runs/{run.pk}/rerun/").status_code == 403


def test_cancel_and_run_again_refuse_get(client, root):
    run = make_run(COUNTDOWN)
    assert client.get(f"/runs/{run.pk}/cancel/").status_code == 405
    assert client.get(f"/runs/{run.pk}/rerun/").status_code == 405


def test_plain_celery_tasks_are_run_again_only_by_superusers(client):
    run = finished_run("apps.demo.tasks.mul", args=[2, 3], source=Source.SHELL)
    auditor = make_user("auditor")
    from django.contrib.auth.models import Permission

    auditor.user_permissions.add(Permission.objects.get(codename="view_all_runs"))
    client.force_login(auditor)
    assert client.get(f"/runs/{run.pk}/").status_code == 200
    assert client.post(f"/runs/{run.pk}/rerun/").status_code == 403


def test_schedule_opens_the_admin_form_prefilled_with_the_job_and_parameters(client, root):
    run = finished_run(COUNTDOWN, parameters={"seconds": 7})
    url = client.get(f"/runs/{run.pk}/").context["schedule_url"]
    parts = urlsplit(url)
    assert parts.path == "/admin/django_celery_beat/periodictask/add/"
    query = parse_qs(parts.query)
    assert query["task"] == [COUNTDOWN]
    assert json.loads(query["kwargs"][0]) == {"seconds": 7}
    add_page = client.get(url)
    form = add_page.context["adminform"].form
    assert COUNTDOWN in (form.initial.get("regtask"), form.initial.get("task"))
    html = add_page.content.decode()  # as a typed field, or as the raw kwargs JSON
    assert 'value="7"' in html or "{&quot;seconds&quot;: 7}" in html


def test_schedule_is_not_offered_to_users_who_may_not_add_schedules(client):
    alice = make_user("alice", jobs=(ADD,))
    run = finished_run(requested_by=alice)
    client.force_login(alice)
    page = client.get(f"/runs/{run.pk}/")
    assert page.context["schedule_url"] == ""
    assert b"Schedule</a>" not in page.content


# A row written before the rule of what a JSON value may be (apps/jobs/json_values.py) --


def test_a_run_stored_with_a_lone_surrogate_still_shows_its_page_and_admin_page(client, root):
    """SQLite's JSON check let a lone surrogate in (from an older version's web form or
    schedule); its page was a 500 (UnicodeEncodeError) for good. It is shown replaced."""
    from django.db import connection

    if connection.vendor != "sqlite":
        pytest.skip("PostgreSQL's jsonb never stored one")
    run = finished_run("apps.demo.tasks_api.tasks.tally",
                       parameters={"counts": {"a": "\ud800"}}, args=["\udfff", 2])  # fmt: skip
    make_task_result(run, "\ud800!", traceback=None)
    for url in (f"/runs/{run.pk}/", f"/admin/jobs/run/{run.pk}/change/"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert "\ufffd" in response.content.decode(), url
    assert client.get(f"/runs/{run.pk}/", **HTMX).status_code == 200
    assert client.get(f"/jobs/apps.demo.tasks_api.tasks.tally/?rerun={run.pk}").status_code == 200
