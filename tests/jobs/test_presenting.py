"""One description of a run (apps/jobs/presenting.py): the run page, `manage.py jobs
status` and the API show the same facts about it."""

import datetime as dt
import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_celery_results.models import TaskResult

from apps.jobs.models import Run, State
from apps.jobs.presenting import describe
from tests.api.helpers import token_client
from tests.helpers import make_run, make_superuser, make_user

pytestmark = pytest.mark.django_db
ADD = "apps.demo.tasks.add"
COUNTDOWN = "apps.demo.tasks.countdown"


def store_result(run: Run, result, status: str, **kw) -> None:
    TaskResult.objects.create(task_id=run.task_id, task_name=run.job_name, status=status,
                              result=json.dumps(result), content_type="application/json",
                              content_encoding="utf-8", **kw)  # fmt: skip


def page(client, run: Run) -> str:
    return client.get(f"/runs/{run.pk}/").content.decode()


def cli_status(run: Run) -> dict:
    out = StringIO()
    call_command("jobs", "status", str(run.pk), "--json", stdout=out)
    return json.loads(out.getvalue())


def api_read(user, run: Run) -> dict:
    return token_client(user).get(f"/api/runs/{run.pk}").json()


@pytest.fixture
def root(client):
    user = make_superuser()
    client.force_login(user)
    return user


def test_a_retrying_run_shows_its_last_error_on_the_page_the_cli_and_the_api(client, root):
    run = make_run(ADD, state=State.RETRYING, started_at=timezone.now(), worker="w1@host")
    store_result(run, {"exc_type": "ValueError"}, "RETRY", traceback="Traceback: try again")
    assert "Traceback: try again" in page(client, run)
    assert cli_status(run)["traceback"] == "Traceback: try again"
    assert api_read(root, run)["traceback"] == "Traceback: try again"


def test_a_run_whose_worker_only_its_result_names_shows_that_worker_everywhere(client, root):
    run = make_run(ADD, state=State.SUCCEEDED, finished_at=timezone.now())
    store_result(run, 9, "SUCCESS", worker="celery@only-here")
    assert "celery@only-here" in page(client, run)
    assert cli_status(run)["worker"] == "celery@only-here"
    assert api_read(root, run)["worker"] == "celery@only-here"


def test_a_result_is_shown_once_celery_finished_the_run_and_not_while_it_reports_progress(
    client, root
):
    running = make_run(COUNTDOWN, state=State.PROGRESS, progress_done=1, progress_total=2)
    store_result(running, {"done": 1, "total": 2}, "PROGRESS")
    done = make_run(ADD, state=State.SUCCEEDED, finished_at=timezone.now())
    store_result(done, {"sum": 9}, "SUCCESS")
    assert client.get(f"/runs/{running.pk}/").context["result"] is None
    assert cli_status(running)["result"] is None and api_read(root, running)["result"] is None
    assert "&quot;sum&quot;: 9" in page(client, done)
    assert cli_status(done)["result"] == api_read(root, done)["result"] == {"sum": 9}


def test_times_and_durations_agree_between_the_cli_and_the_api(root):
    now = timezone.now()
    run = make_run(ADD, state=State.SUCCEEDED, queued_at=now - dt.timedelta(seconds=3),
                   started_at=now - dt.timedelta(seconds=2), finished_at=now)  # fmt: skip
    shown, read = cli_status(run), api_read(root, run)
    assert shown["wait_seconds"] == read["wait_seconds"] == 1.0
    assert shown["run_seconds"] == read["run_seconds"] == 2.0
    for name in ("queued_at", "started_at", "finished_at"):  # the API's JSON: to the ms
        gap = dt.datetime.fromisoformat(shown[name]) - dt.datetime.fromisoformat(read[name])
        assert abs(gap) < dt.timedelta(milliseconds=1)


def test_what_a_reader_may_do_follows_their_permission_to_run_the_job():
    run = make_run(COUNTDOWN, state=State.QUEUED)
    allowed, other = make_user("alice", jobs=(COUNTDOWN,)), make_user("bob", jobs=(ADD,))
    mine = describe(run, allowed)
    assert (mine.may_cancel, mine.may_rerun) == (True, True)
    theirs = describe(run, other)
    assert (theirs.may_cancel, theirs.may_rerun, theirs.schedule_url) == (False, False, "")
    assert not describe(run).may_rerun  # no reader, no links (the CLI)
