"""What the Tasks API backend refuses, and how: before anything is recorded or sent."""

import datetime as dt

import pytest
from django_tasks.exceptions import InvalidTaskError, TaskResultDoesNotExist

from apps.demo.tasks_api.tasks import echo_later, greet, tally, tidy_up
from apps.jobs.models import Run
from tests.api.helpers import token_client
from tests.helpers import make_run, make_superuser, make_user

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


# Numbers the demo tasks declare bounds for ---------------------------------------------

ECHO_LATER, TIDY_UP = echo_later.module_path, tidy_up.module_path


@pytest.mark.parametrize(
    ("job", "parameters", "message"),
    [
        (ECHO_LATER, {"text": "x", "seconds": 1e308}, "seconds: Ensure this value is less than"),
        (ECHO_LATER, {"text": "x", "seconds": -5}, "seconds: Ensure this value is greater than"),
        (TIDY_UP, {"days": 10**30}, "days: Ensure this value is less than or equal to 3650."),
        (TIDY_UP, {"days": 0}, "days: Ensure this value is greater than or equal to 1."),
    ],
)
def test_a_number_outside_a_demo_tasks_bounds_is_refused_by_the_api(job, parameters, message):
    client = token_client(make_superuser())
    response = client.post(f"/api/jobs/{job}/runs", {"parameters": parameters},
                           content_type="application/json")  # fmt: skip
    assert response.status_code == 422
    assert response.json()["detail"].startswith(f"Invalid parameters: {message}")
    assert not Run.objects.exists()


def test_the_demo_tasks_bounds_are_in_their_schema_and_values_within_them_run():
    client = token_client(make_superuser())
    seconds = client.get(f"/api/jobs/{ECHO_LATER}").json()["parameters"]["properties"]["seconds"]
    assert (seconds["minimum"], seconds["maximum"]) == (0, 60)
    response = client.post(f"/api/jobs/{ECHO_LATER}/runs",
                           {"parameters": {"text": "x", "seconds": 0.5}},
                           content_type="application/json")  # fmt: skip
    assert response.status_code == 201
    assert Run.objects.get().parameters == {"text": "x", "seconds": 0.5}
