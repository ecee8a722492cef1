"""What a job gets from the values people submit, the same at every door (the web form,
the API and its bulk start, `manage.py jobs run`, `manage.py schedules add`, Run again,
the Tasks API): clean_parameters is the one rule.

- Blank (a cleared field, `failures=`, null) is the parameter's default; refused as
  required when it has none; only a parameter typed Optional takes None.
- JSON values (the API, a stored run or schedule, the Tasks API) must have a JSON type
  that fits: text is a string (or a number, read as its JSON text), a bool is true or
  false, a number is never a bool; words like "yes" are for text doors only.
- A JSON parameter takes JSON text once at a text door (form, command line) and a JSON
  value as it is at a data door: a string stays a string, and a run re-runs as stored.
- A choice that is not required offers a blank choice ("any"), selected when it is the
  default.
"""

import datetime as dt
import json
import re
import uuid
from decimal import Decimal
from typing import Literal

import pytest
from celery import current_app
from django.urls import reverse
from django_celery_beat.models import PeriodicTask

from apps.demo.tasks import square
from apps.demo.tasks_api.tasks import greet, tally
from apps.jobs import params as P
from apps.jobs.catalog import Job, ParameterError, clean_parameters
from apps.jobs.models import Run
from apps.scheduling.forms import ScheduleTaskForm
from tests.api.helpers import token_client
from tests.helpers import make_run, make_superuser
from tests.jobs.test_cli import jobs
from tests.scheduling.test_cli import schedules

pytestmark = pytest.mark.django_db

FLAKY, ADD = "apps.demo.tasks.flaky", "apps.demo.tasks.add"
GREET, TALLY = greet.module_path, tally.module_path
GREET, TALLY = greet.module_path, tally.module_path
EXPORT = "apps.reports.tasks.export_runs"


@pytest.fixture
def api():
    return token_client(make_superuser("api-user"))


def post_json(client, url: str, body: dict):
    return client.post(url, json.dumps(body), content_type="application/json")


def started(client, job: str, parameters: dict) -> Run:
    response = post_json(client, f"/api/jobs/{job}/runs", {"parameters": parameters})
    assert response.status_code == 201, response.content
    return Run.objects.get(pk=response.json()["id"])


def refused(client, job: str, parameters: dict) -> dict:
    response = post_json(client, f"/api/jobs/{job}/runs", {"parameters": parameters})
    assert response.status_code == 422, response.content
    assert not Run.objects.exists()
    return response.json()["errors"]


def form_post(client, job: str, data: dict):
    return client.post(f"/jobs/{job}/", {**data, "idempotency_key": uuid.uuid4()})


# 1. Blank is the default -----------------------------------------------------------------


def test_a_cleared_number_in_the_web_form_runs_with_its_default(root_client):
    assert form_post(root_client, FLAKY, {"failures": ""}).status_code == 302
    assert Run.objects.get().parameters == {"failures": 2}


def test_null_from_the_api_is_the_default(api):
    assert started(api, FLAKY, {"failures": None}).parameters == {"failures": 2}
    Run.objects.all().delete()
    assert refused(api, ADD, {"x": None, "y": 1}) == {"x": ["This field is required."]}


def test_null_and_blank_items_of_a_bulk_start_take_the_default(api):
    body = {"items": [{"failures": None}, {"failures": ""}, {"failures": 5}]}
    response = post_json(api, f"/api/jobs/{FLAKY}/runs/bulk", body)
    assert response.status_code == 201, response.content
    assert sorted(run.parameters["failures"] for run in Run.objects.all()) == [2, 2, 5]


def test_jobs_run_with_a_blank_value_runs_with_the_default():
    code, _, error = jobs("run", FLAKY, "failures=")
    assert code == 0, error
    assert Run.objects.get().parameters == {"failures": 2}
    # A parameter with no default is required: blank is refused, naming it.
    assert jobs("run", ADD, "x=", "y=1")[::2] == (2, "x: This field is required.")


def test_schedules_add_with_a_blank_value_stores_the_default():
    code, _, error = schedules(
        "add", "flaky nightly", "--job", FLAKY, "--every", "1h", "failures="
    )
    assert code == 0, error
    assert json.loads(PeriodicTask.objects.get(name="flaky nightly").kwargs) == {"failures": 2}
    code, _, error = schedules("add", "blank add", "--job", ADD, "--every", "1h", "x=", "y=1")
    assert (code, error) == (2, "x: This field is required.")


def test_run_again_of_a_run_stored_with_null_runs_with_the_default(root_client):
    old = make_run(FLAKY, parameters={"failures": None})
    assert root_client.post(reverse("jobs:rerun", args=[old.pk])).status_code == 302
    assert Run.objects.get(rerun_of=old).parameters == {"failures": 2}


def test_a_worker_given_null_for_a_parameter_with_a_default_uses_the_default():
    # An old schedule row or `.delay(pause=None)`: time.sleep(None) was a TypeError.
    assert square.apply(kwargs={"x": 3, "pause": None}).get() == 9


def every_kind(
    count: int = 3,
    ratio: float = 0.5,
    price: Decimal = Decimal("9.99"),
    name: str = "x",
    dry_run: bool = True,
    day: dt.date = dt.date(2026, 3, 29),
    at: dt.datetime = dt.datetime(2026, 3, 29, 2, 30, tzinfo=dt.UTC),
    every: dt.timedelta = dt.timedelta(minutes=90),
    mode: Literal["fast", "slow"] = "slow",
    tags: list[str] = ("a", "b"),
    limit: int | None = 10,
    since: dt.date | None = None,
) -> None:
    """A job with a default for every kind of parameter."""


EVERY_KIND = Job(name="tests.every_kind", title="Every kind", description="",
                 params=P.params_from_signature(every_kind))  # fmt: skip
DEFAULTS = {"count": 3, "ratio": 0.5, "price": "9.99", "name": "x", "dry_run": True,
            "day": "2026-03-29", "at": "2026-03-29T02:30:00+00:00", "every": 5400.0,
            "mode": "slow", "tags": ["a", "b"], "limit": 10, "since": None}  # fmt: skip


@pytest.mark.parametrize("blank", [None, "", "  "])
def test_blank_json_values_of_every_kind_are_their_defaults_but_optional_ones_are_none(blank):
    cleaned = clean_parameters(EVERY_KIND, dict.fromkeys(DEFAULTS, blank))
    assert cleaned == {**DEFAULTS, "limit": None}
    assert clean_parameters(EVERY_KIND, {}) == DEFAULTS  # omitted: the default, None too


def test_blank_text_of_every_kind_is_its_default_but_optional_ones_are_none():
    cleaned = clean_parameters(EVERY_KIND, dict.fromkeys(DEFAULTS, ""), text=True)
    assert cleaned == {**DEFAULTS, "limit": None}


def test_a_blank_bool_with_no_default_is_refused_as_required():
    def needs(flag: bool) -> None: ...

    job = Job(name="tests.needs", title="Needs", description="",
              params=P.params_from_signature(needs))  # fmt: skip
    for value, text in ((None, False), ("", True)):
        with pytest.raises(ParameterError) as refusal:
            clean_parameters(job, {"flag": value}, text=text)
        assert refusal.value.errors == {"flag": ["This field is required."]}


# 2. A JSON value's type must fit -----------------------------------------------------------


@pytest.mark.parametrize(
    ("job", "parameters", "errors"),
    [
        (GREET, {"name": True}, {"name": ["expected text, got true"]}),
        (GREET, {"name": "x", "shout": "yes"}, {"shout": ["expected true or false, got 'yes'"]}),
        (GREET, {"name": "x", "shout": 1}, {"shout": ["expected true or false, got a number"]}),
        (ADD, {"x": True, "y": 1}, {"x": ["expected a number, got true"]}),
    ],
)
def test_the_api_refuses_a_json_value_of_a_type_that_does_not_fit_naming_it(
    api, job, parameters, errors
):  # fmt: skip
    assert refused(api, job, parameters) == errors


def test_the_bulk_api_names_the_item_whose_type_does_not_fit(api):
    body = {"items": [{"name": "Ada"}, {"name": False}]}
    response = post_json(api, f"/api/jobs/{GREET}/runs/bulk", body)
    assert response.status_code == 422
    assert response.json()["errors"] == {"items[1].name": ["expected text, got false"]}
    assert not Run.objects.exists()


def test_a_number_for_a_text_parameter_is_its_json_text_but_a_bool_is_refused(api):
    assert started(api, GREET, {"name": 42}).parameters == {"name": "42", "shout": False}
    Run.objects.all().delete()
    assert refused(api, GREET, {"name": False}) == {"name": ["expected text, got false"]}


def test_the_words_for_a_bool_are_for_text_doors_only(api):
    code, _, error = jobs("run", GREET, "name=Ada", "shout=yes")
    assert code == 0, error
    assert Run.objects.get().parameters == {"name": "Ada", "shout": True}
    Run.objects.all().delete()
    assert refused(api, GREET, {"name": "Ada", "shout": "yes"}) == {
        "shout": ["expected true or false, got 'yes'"]
    }


# 3. JSON parameters: text parsed once, values taken as they are ---------------------------


def test_the_api_keeps_a_string_for_a_json_parameter_a_string(api):
    run = started(api, TALLY, {"counts": {"a": 1}, "extra": "abc"})
    assert run.parameters == {"counts": {"a": 1}, "extra": "abc"}
    Run.objects.all().delete()
    assert started(api, TALLY, {"counts": {"a": 1}, "extra": "[5]"}).parameters["extra"] == "[5]"
    Run.objects.all().delete()
    # The command line gives JSON text: parsed once.
    code, _, error = jobs("run", TALLY, 'counts={"a": 1}', "extra=[5]")
    assert code == 0, error
    assert Run.objects.get().parameters == {"counts": {"a": 1}, "extra": [5]}
    assert jobs("run", TALLY, 'counts={"a": 1}', "extra=abc")[::2] == (
        2, "extra: Enter a valid JSON."
    )  # fmt: skip


def test_the_api_takes_empty_objects_and_lists_as_values(api):
    assert started(api, TALLY, {"counts": {}, "extra": []}).parameters == {
        "counts": {},
        "extra": [],
    }


def test_the_api_refuses_json_text_for_a_parameter_typed_dict(api):
    errors = refused(api, TALLY, {"counts": '{"a": 1}'})
    assert errors == {"counts": ["expected a JSON object, got '{\"a\": 1}'"]}


def test_a_json_string_from_the_web_form_can_be_run_again(root_client):
    data = {"counts": '{"a": 1}', "extra": '"abc"'}
    assert form_post(root_client, TALLY, data).status_code == 302
    first = Run.objects.get()
    assert first.parameters == {"counts": {"a": 1}, "extra": "abc"}
    root_client.post(reverse("jobs:rerun", args=[first.pk]))
    assert Run.objects.get(rerun_of=first).parameters == first.parameters


def test_the_api_retry_of_a_stored_json_string_runs_it_again(api):
    old = make_run(TALLY, parameters={"counts": {"a": 1}, "extra": "abc"})
    response = api.post(f"/api/runs/{old.pk}/retry")
    assert response.status_code == 201, response.content
    assert Run.objects.get(rerun_of=old).parameters == {"counts": {"a": 1}, "extra": "abc"}


def test_a_scheduled_json_string_runs_as_it_was_stored():
    code, _, error = schedules("add", "tally", "--job", TALLY, "--every", "1h",
                               'counts={"a": 1}', 'extra="abc"')  # fmt: skip
    assert code == 0, error
    task = PeriodicTask.objects.get(name="tally")
    assert json.loads(task.kwargs) == {"counts": {"a": 1}, "extra": "abc"}
    assert schedules("run", "tally")[0] == 0
    assert Run.objects.get().parameters == {"counts": {"a": 1}, "extra": "abc"}


# 4. A choice that is not required offers a blank one --------------------------------------


def test_the_export_form_starts_its_state_and_source_selects_blank(root_client):
    form = root_client.get(f"/jobs/{EXPORT}/").context["form"]
    for name in ("state", "source"):
        choices = list(form.fields[name].choices)
        assert choices[0] == ("", "---------")
        assert form[name].value() == ""
    assert '<option value="" selected>---------</option>' in str(form["state"])


def as_a_browser_submits(bound_field) -> str:
    """A select's value as a browser posts it: the selected option, else the first."""
    html = str(bound_field)
    selected = re.search(r'<option value="([^"]*)"[^>]* selected>', html)
    return (selected or re.search(r'<option value="([^"]*)"', html))[1]


def test_an_export_of_one_job_filled_in_alone_filters_by_no_state_or_source(root_client):
    form = root_client.get(f"/jobs/{EXPORT}/").context["form"]
    selects = {name: as_a_browser_submits(form[name]) for name in ("state", "source")}
    response = form_post(root_client, EXPORT, {"job": ADD, **selects})
    assert response.status_code == 302
    parameters = Run.objects.get().parameters
    assert (parameters["job"], parameters["state"], parameters["source"]) == (ADD, "", "")


def test_the_admin_schedule_form_for_the_export_offers_a_blank_state():
    form = ScheduleTaskForm(initial={"task": EXPORT})
    assert next(iter(form.fields["param-state"].choices)) == ("", "---------")
    assert form["param-state"].value() == ""


def test_a_blank_choice_is_the_default_and_a_required_choice_has_no_blank():
    def pick(size: Literal["s", "m"], speed: Literal["fast", "slow"] = "slow") -> None: ...

    job = Job(name="tests.pick", title="Pick", description="",
              params=P.params_from_signature(pick))  # fmt: skip
    fields = job.form_class()().fields
    assert [value for value, _ in fields["size"].choices] == ["s", "m"]
    assert [value for value, _ in fields["speed"].choices] == ["", "fast", "slow"]
    assert clean_parameters(job, {"size": "m", "speed": ""}) == {"size": "m", "speed": "slow"}


# The worker's last look: the same rule, for a message from anywhere ---------------------


@pytest.mark.parametrize(
    ("task_name", "kwargs", "refusal"),
    [
        (GREET, {"name": "ada", "shout": "false"}, "shout: expected true or false, got 'false'"),
        (FLAKY, {"failures": True}, "failures: expected a number, got true"),
        (GREET, {"name": ["a"]}, "name: expected a value, not a list"),
        (TALLY, {"counts": '{"a": 1}'}, "counts:"),
    ],
    ids=["a word for a bool", "a bool for a number", "a list for text", "text for an object"],
)
def test_a_message_sent_past_the_doors_is_refused_as_the_doors_refuse_it(
    task_name, kwargs, refusal
):
    """A schedule row written straight into the table, `.delay()`, `celery call`: beat
    sent these, and the worker ran them (HELLO, ADA!; 'after True failure(s)')."""
    outcome = current_app.tasks[task_name].apply(kwargs=kwargs)
    assert outcome.failed()
    assert isinstance(outcome.result, ValueError)
    assert str(outcome.result).startswith(refusal)


def test_a_message_with_a_blank_value_runs_with_the_default():
    """It failed in the job: '<' not supported between instances of 'str' and 'int'."""
    outcome = square.apply(kwargs={"x": 3, "pause": ""})
    assert outcome.successful(), outcome.traceback
    assert outcome.result == 9
