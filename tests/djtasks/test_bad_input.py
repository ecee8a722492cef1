"""What the Tasks API backend refuses, and how: before anything is recorded or sent."""

import datetime as dt

import pytest
from django_tasks.exceptions import InvalidTaskError, TaskResultDoesNotExist

from apps.demo.tasks_api.tasks import greet, tally
from apps.jobs.models import Run
from tests.api.helpers import token_client
from tests.helpers import make_run, make_user

pytestmark = pytest.mark.django_db

TALLY = tally.module_path


@pytest.mark.parametrize("priority", [101, -101, 1.5, 10**9])
def test_a_priority_outside_the_tasks_apis_range_is_refused(priority):
    with pytest.raises(InvalidTaskError, match="priority"):
        greet.using(priority=priority).enqueue("x")
    assert not Run.objects.exists()


@pytest.mark.parametrize("argument", [dt.date(2026, 1, 1), object(), {1, 2}, b"\xff"])
def test_an_argument_that_is_not_json_is_refused_before_anything_is_recorded(argument):
    with pytest.raises((TypeError, ValueError)):
        greet.enqueue(argument)
    assert not Run.objects.exists()


@pytest.mark.parametrize(
    "result_id", ["", "no-such-id", "x" * 10_000, "\x00\r\n<script>", "1; DROP TABLE x"]
)
def test_an_unknown_or_hostile_result_id_does_not_exist(result_id):
    with pytest.raises(TaskResultDoesNotExist):
        greet.get_result(result_id)


@pytest.mark.parametrize("job_name", ["apps.demo.tasks.add", "os.path.join", "", "no.such.module",
                                      "apps.demo.tasks_api.tasks.nothing", "\x01\n"])  # fmt: skip
def test_a_run_that_is_not_of_a_tasks_api_task_has_no_tasks_api_result(job_name):
    run = make_run(job_name=job_name)
    with pytest.raises(TaskResultDoesNotExist):
        greet.get_result(run.task_id)


def test_the_api_refuses_json_text_that_does_not_parse_with_422():
    client = token_client(make_user("alice", jobs=(TALLY,)))
    response = client.post(f"/api/jobs/{TALLY}/runs", {"parameters": {"counts": "{oops"}},
                           content_type="application/json")  # fmt: skip
    assert response.status_code == 422
    assert "counts" in response.content.decode()
    assert not Run.objects.exists()
