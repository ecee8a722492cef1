"""A job's result, exception, traceback, parameters and note are data: a page that shows
them shows their HTML as text, and no script in them runs (a real browser checks)."""

import json
import uuid

import pytest
from django.utils import timezone
from django_celery_results.models import TaskResult

from apps.jobs.models import Run, Source, State
from tests.browser_fixtures import login
from tests.helpers import make_superuser

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCRIPT = "<script>window.xss='{}'</script>"
IMAGE = "<img src=x onerror=\"window.xss='{}'\">"


def make_hostile_run(state: State, status: str, result, traceback: str | None = None) -> Run:
    """A finished run whose every shown field carries markup that would set window.xss."""
    now = timezone.now()
    run = Run.objects.create(
        task_id=str(uuid.uuid4()), job_name="apps.checks.tasks.http_check",
        parameters={"url": SCRIPT.format("parameter"), "contains": IMAGE.format("parameter")},
        source=Source.WEB, requested_by_label=IMAGE.format("requester"), state=state,
        queued_at=now, started_at=now, finished_at=now, note=SCRIPT.format("note"),
        progress_message=IMAGE.format("progress"), worker=IMAGE.format("worker"),
    )  # fmt: skip
    TaskResult.objects.create(
        task_id=run.task_id, status=status, result=json.dumps(result), traceback=traceback,
        task_name=run.job_name, worker=IMAGE.format("worker"), date_done=now,
        task_kwargs=json.dumps(repr(run.parameters)),
    )  # fmt: skip
    return run


@pytest.fixture
def hostile_runs():
    succeeded = make_hostile_run(State.SUCCEEDED, "SUCCESS", SCRIPT.format("result"))
    failure = {"exc_type": "ValueError", "exc_module": "builtins",
               "exc_message": [IMAGE.format("exception")]}  # fmt: skip
    traceback = "Traceback (most recent call last):\n  " + SCRIPT.format("traceback")
    failed = make_hostile_run(State.FAILED, "FAILURE", failure, traceback)
    return succeeded, failed


def shows_as_text_and_runs_nothing(page, url: str, *texts: str) -> None:
    page.goto(url)
    page.wait_for_load_state("networkidle")
    assert page.evaluate("typeof window.xss") == "undefined", f"script ran on {url}"
    body = page.inner_text("body")
    for text in texts:
        assert text in body, f"{text!r} not shown as text on {url}"


def test_results_and_tracebacks_show_as_text_on_the_run_pages(page, live_server, hostile_runs):
    make_superuser("root")
    login(page, live_server, "root")
    succeeded, failed = hostile_runs
    shows_as_text_and_runs_nothing(
        page, f"{live_server.url}/runs/{succeeded.pk}/",
        SCRIPT.format("result"), SCRIPT.format("note"), SCRIPT.format("parameter"),
    )  # fmt: skip
    shows_as_text_and_runs_nothing(
        page, f"{live_server.url}/runs/{failed.pk}/",
        SCRIPT.format("traceback"), "<img src=x onerror=", "window.xss='exception'",
    )  # fmt: skip
    for path in ("/runs/", "/", "/dashboard/failures/", "/dashboard/runs/"):
        shows_as_text_and_runs_nothing(page, live_server.url + path)


def test_results_and_tracebacks_show_as_text_in_the_admin(page, live_server, hostile_runs):
    make_superuser("root")
    login(page, live_server, "root")
    succeeded, failed = hostile_runs
    result_of = {run: TaskResult.objects.get(task_id=run.task_id).pk for run in hostile_runs}
    admin = f"{live_server.url}/admin"
    shows_as_text_and_runs_nothing(
        page, f"{admin}/django_celery_results/taskresult/{result_of[succeeded]}/change/",
        "window.xss='result'",
    )  # fmt: skip
    shows_as_text_and_runs_nothing(
        page, f"{admin}/django_celery_results/taskresult/{result_of[failed]}/change/",
        SCRIPT.format("traceback"),
    )  # fmt: skip
    for path in ("/django_celery_results/taskresult/", "/jobs/run/",
                 f"/jobs/run/{failed.pk}/change/", "/ops/incident/"):  # fmt: skip
        shows_as_text_and_runs_nothing(page, admin + path)
