"""What the Tasks API backend refuses, and how: before anything is recorded or sent."""

import datetime as dt

import pytest
from django_tasks.exceptions import InvalidTaskError, TaskResultDoesNotExist

from apps.demo.tasks_api.tasks import divide, echo_later, greet, tally, tidy_up, whoami
from apps.djtasks.models import SendOptions
from apps.djtasks.registry import InvalidArguments
from apps.jobs.catalog import ParameterError
from apps.jobs.models import Run
from tests.api.helpers import token_client
from tests.djtasks.test_runs import run_coroutine
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


# What enqueue refuses: the task's parameters, as at every other door -------------------


def refused(label, task, args, kwargs, field, message):
    return pytest.param(task, args, kwargs, field, message, id=label)


REFUSED_CALLS = [
    refused("a number above its bound", tidy_up, (), {"days": 99999},
            "days", "less than or equal to 3650"),
    refused("a positional number below its bound", tidy_up, (-5,), {},
            "days", "greater than or equal to 1"),
    refused("a float above its bound", echo_later, ("x",), {"seconds": 1e6},
            "seconds", "less than or equal to 60"),
    refused("a list for a text", greet, (), {"name": ["a"]},
            "name", "expected a value, not a list"),
    refused("a word for a number", tidy_up, ("soon",), {}, "days", "Enter a whole number."),
    # Python values are data, not words: "false" would reach greet as a text, which
    # Python takes as true, and True for a text would reach it as a bool.
    refused("a word for a bool", greet, ("Ada",), {"shout": "false"},
            "shout", "expected true or false, got 'false'"),
    refused("a bool for a text", greet, (True,), {}, "name", "expected text, got true"),
    refused("a bool for a number", tidy_up, (True,), {}, "days", "expected a number, got true"),
    refused("a text for an object", tally, ('{"a": 1}',), {},
            "counts", "expected a JSON object, got '{\"a\": 1}'"),
    refused("too many positional arguments", greet, ("a", "b", "c"), {},
            "args", "3 positional arguments given, at most 2 taken"),
    refused("too many beside a context", whoami, ("a", "b"), {},
            "args", "2 positional arguments given, at most 1 taken"),
    refused("an unknown keyword", greet, ("a",), {"loud": True}, "loud", "unknown parameter"),
    refused("a required one left out", greet, (), {"shout": True},
            "name", "This field is required."),
    refused("one given twice", greet, ("a",), {"name": "b"},
            "name", "given twice, by position and by name"),
]  # fmt: skip


@pytest.mark.parametrize(("task", "args", "kwargs", "field", "message"), REFUSED_CALLS)
def test_enqueue_refuses_a_call_its_parameters_refuse_naming_it_and_records_nothing(
    task, args, kwargs, field, message
):  # fmt: skip
    with pytest.raises(InvalidArguments) as refusal:
        task.enqueue(*args, **kwargs)
    assert list(refusal.value.errors) == [field]
    assert message in " ".join(refusal.value.errors[field])
    assert not Run.objects.exists()
    assert not SendOptions.objects.exists()  # tidy_up's priority is kept only for a run


def test_a_refused_enqueue_is_what_callers_of_a_python_call_or_of_parameters_catch():
    for caught in (TypeError, ValueError, ParameterError):
        with pytest.raises(caught, match="days: Ensure this value is greater than or equal to 1"):
            tidy_up.enqueue(-5)
    assert not Run.objects.exists()


def test_aenqueue_refuses_a_bad_call_as_enqueue_does_and_records_nothing():
    with pytest.raises(InvalidArguments, match="seconds: Ensure this value is less than"):
        run_coroutine(echo_later.aenqueue("x", seconds=1e6))
    with pytest.raises(InvalidArguments, match="args: 3 positional arguments given"):
        run_coroutine(greet.aenqueue("a", "b", "c"))
    assert not Run.objects.exists()


def test_good_calls_are_recorded_with_their_arguments_where_and_as_they_were_given():
    calls = [
        (lambda: greet.enqueue("Ada"), ["Ada"], {}),
        (lambda: greet.enqueue(name="Ada", shout=True), [], {"name": "Ada", "shout": True}),
        (lambda: divide.enqueue(1, 0), [1, 0], {}),
        (lambda: tidy_up.enqueue(3650), [3650], {}),
        (lambda: echo_later.enqueue("x", 60), ["x", 60], {}),
        (lambda: tally.enqueue({"a": 1}, extra="a text stays a text"), [{"a": 1}],
         {"extra": "a text stays a text"}),
        (lambda: whoami.enqueue(note="hi"), [], {"note": "hi"}),
    ]  # fmt: skip
    for call, args, parameters in calls:
        run = Run.objects.get(task_id=call().id)
        assert (run.args, run.parameters) == (args, parameters)


def test_the_api_refuses_a_list_for_a_text_parameter_with_422_naming_it():
    client = token_client(make_superuser())
    response = client.post(f"/api/jobs/{greet.module_path}/runs", {"parameters": {"name": ["a"]}},
                           content_type="application/json")  # fmt: skip
    assert response.status_code == 422
    assert list(response.json()["errors"]) == ["name"]
    assert not Run.objects.exists()
