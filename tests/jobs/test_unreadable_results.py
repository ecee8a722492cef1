"""A stored result nested too deep to read (a row written by hand, or by another
program) is shown as "not readable" beside the normal rows at every door that reads
results: the dashboard, the failures pages, the run page, the API, the CLI, the Tasks
API and a pipeline's page. Never a 500 or a traceback."""

import json
import logging

import pytest
from django.utils import timezone
from django_celery_results.models import TaskResult

from apps.demo.tasks_api.tasks import greet
from apps.jobs.models import Run, State
from tests.api.helpers import token_client
from tests.helpers import make_superuser, make_user
from tests.jobs.test_cli import jobs
from tests.ops.makers import given_snapshot
from tests.pipelines.test_page import HTMX, make_pipeline_run, succeeded_with_results

pytestmark = pytest.mark.django_db

ADD = "apps.demo.tasks.add"
DEEP = "[" * 100_000 + "]" * 100_000
UNREADABLE = "(stored value not readable: nested deeper than 100 levels)"
ERROR = json.dumps(
    {"exc_type": "ValueError", "exc_message": ["db down"], "exc_module": "builtins"}
)


def finished(job_name: str, state: str, result: str, status: str) -> Run:
    now = timezone.now()
    run = Run.objects.create(task_id=f"t-{Run.objects.count()}", job_name=job_name, state=state,
                             source="web", queued_at=now, finished_at=now)  # fmt: skip
    TaskResult.objects.create(task_id=run.task_id, status=status, result=result,
                              content_type="application/json",
                              content_encoding="utf-8")  # fmt: skip
    return run


def failed(result: str, job_name: str = ADD) -> Run:
    return finished(job_name, State.FAILED, result, "FAILURE")


@pytest.fixture
def deep_and_normal_failures():
    return failed(DEEP), failed(ERROR)


@pytest.fixture
def root(client):
    client.force_login(make_superuser())
    return client


@pytest.fixture
def limited(client):
    client.force_login(make_user("dora", jobs=(ADD,)))
    return client


def test_the_dashboard_and_its_failures_show_the_deep_result_as_not_readable(
    root, deep_and_normal_failures, caplog
):
    given_snapshot("w1@host")
    assert root.get("/").status_code == 200
    with caplog.at_level(logging.WARNING):
        page = root.get("/dashboard/failures/").content.decode()
    assert UNREADABLE in page and "ValueError: [&#x27;db down&#x27;]" in page
    assert "stored value not readable" in caplog.text


def test_a_limited_staff_user_sees_the_dashboards_failures_too(limited, deep_and_normal_failures):
    given_snapshot("w1@host")
    assert limited.get("/").status_code == 200
    page = limited.get("/dashboard/failures/").content.decode()
    assert UNREADABLE in page and "db down" in page


def test_the_failed_for_good_page_groups_the_deep_result_as_not_readable(
    root, deep_and_normal_failures
):
    page = root.get("/runs/failed/").content.decode()
    assert UNREADABLE in page and "db down" in page


def test_the_api_lists_the_failure_groups_with_the_deep_one_not_readable(
    deep_and_normal_failures,
):
    response = token_client(make_superuser()).get("/api/runs/failed")
    assert response.status_code == 200
    messages = {group["message"] for group in response.json()}
    assert {UNREADABLE, "db down"} <= messages


def test_the_run_page_and_the_api_show_the_deep_result_as_not_readable(
    root, deep_and_normal_failures
):
    deep, normal = deep_and_normal_failures
    assert UNREADABLE in root.get(f"/runs/{deep.pk}/").content.decode()
    assert "db down" in root.get(f"/runs/{normal.pk}/").content.decode()
    api = token_client(make_superuser("api-root"))
    answer = api.get(f"/api/runs/{deep.pk}")
    assert answer.status_code == 200 and answer.json()["result"] == UNREADABLE
    assert api.get(f"/api/runs/{normal.pk}").json()["result"]["exc_type"] == "ValueError"


def test_the_cli_shows_the_deep_result_as_not_readable(deep_and_normal_failures):
    deep, _ = deep_and_normal_failures
    assert jobs("status", str(deep.pk))[0] == 0
    code, out, _ = jobs("status", str(deep.pk), "--json")
    assert code == 0 and json.loads(out)["result"] == UNREADABLE
    succeeded = finished(ADD, State.SUCCEEDED, DEEP, "SUCCESS")
    assert f"result:       {UNREADABLE}" in jobs("status", str(succeeded.pk))[1]
    code, out, _ = jobs("runs", "--failures")
    assert code == 0 and UNREADABLE in out and "ValueError: db down" in out


def test_the_tasks_api_gives_the_not_readable_marker_as_a_deep_return_value():
    deep = finished(greet.module_path, State.SUCCEEDED, DEEP, "SUCCESS")
    normal = finished(greet.module_path, State.SUCCEEDED, '"Hello, Ann"', "SUCCESS")
    assert greet.get_result(deep.task_id).return_value == UNREADABLE
    assert greet.get_result(normal.task_id).return_value == "Hello, Ann"


def test_the_tasks_api_reads_a_deep_failure_as_an_exception_it_cannot_name():
    deep, normal = failed(DEEP, greet.module_path), failed(ERROR, greet.module_path)
    [error] = greet.get_result(deep.task_id).errors
    assert error.exception_class_path == "builtins.Exception"
    assert greet.get_result(normal.task_id).errors[0].exception_class_path == (
        "builtins.ValueError"
    )


def test_a_pipeline_page_shows_a_steps_deep_result_as_not_readable(root):
    run = succeeded_with_results(make_pipeline_run(count=2))
    TaskResult.objects.filter(task_id=run.steps.get(step="square[0]").task_id).update(result=DEEP)
    response = root.get(run.get_absolute_url(), **HTMX)
    assert response.status_code == 200
    body = response.content.decode()
    assert UNREADABLE in body and "result of square[1]" in body
