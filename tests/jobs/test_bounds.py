"""Bounds declared once in a job's signature hold at every door: the web form, the API,
the CLI, a re-run of an old record, and the worker itself."""

import datetime as dt
import json
from io import StringIO

import pytest
from django.contrib.messages import get_messages
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from django_celery_results.models import TaskResult

from apps.jobs.models import Run, State
from apps.maintenance.tasks import prune_runs
from apps.scheduling.forms import form_data
from tests.api.helpers import token_client
from tests.helpers import make_run, make_superuser, wait_for

pytestmark = pytest.mark.django_db

PRUNE = "apps.maintenance.tasks.prune_runs"
AT_LEAST_1 = "Ensure this value is greater than or equal to 1."
# Out-of-range values for every built-in job: (job, parameters, the parameter refused).
OUT_OF_RANGE = [
    (PRUNE, {"older_than_days": -1}, "older_than_days"),
    (PRUNE, {"older_than_days": 0}, "older_than_days"),
    (PRUNE, {"older_than_days": 3651}, "older_than_days"),
    ("apps.demo.tasks.countdown", {"seconds": -5}, "seconds"),
    ("apps.demo.tasks.countdown", {"seconds": 10**12}, "seconds"),
    ("apps.demo.tasks.add", {"x": 2**53, "y": 1}, "x"),
    ("apps.demo.tasks.add", {"x": 1, "y": -(2**63)}, "y"),
    ("apps.demo.tasks.flaky", {"failures": 11}, "failures"),
    ("apps.maintenance.tasks.backup_database", {"keep": 0}, "keep"),
    ("apps.maintenance.tasks.backup_database", {"keep": -3}, "keep"),
    ("apps.maintenance.tasks.backup_database", {"keep": 1001}, "keep"),
    ("apps.checks.tasks.http_check", {"url": "https://example.com/", "timeout_s": 1e308},
     "timeout_s"),
    ("apps.checks.tasks.http_check", {"url": "https://example.com/", "timeout_s": 0},
     "timeout_s"),
    ("apps.checks.tasks.http_check", {"url": "https://example.com/", "expect_status": 99},
     "expect_status"),
    ("apps.checks.tasks.http_check", {"url": "https://example.com/", "expect_status": 600},
     "expect_status"),
    ("apps.checks.tasks.http_check", {"url": "https://example.com/" + "x" * 2048}, "url"),
    ("apps.checks.tasks.http_check", {"url": "https://example.com/", "contains": "x" * 1001},
     "contains"),
    ("apps.checks.tasks.http_check", {"url": "https://example.com/\r\nX-Evil: 1"}, "url"),
    ("apps.checks.tasks.http_check", {"url": "https://example.com/", "contains": "a\x1bb"},
     "contains"),
    ("apps.maintenance.tasks.run_command", {"command": "check", "arguments": ["x" * 201]},
     "arguments"),
    ("apps.maintenance.tasks.run_command", {"command": "check", "arguments": ["--deploy\x1b"]},
     "arguments"),
    ("apps.maintenance.tasks.run_command", {"command": "no_such_command"}, "command"),
    ("apps.reports.tasks.export_runs", {"date_to": "9999-12-31"}, "date_to"),
    ("apps.reports.tasks.export_runs", {"date_from": "0001-01-01"}, "date_from"),
    ("apps.reports.tasks.export_runs", {"state": "bogus"}, "state"),
    ("apps.reports.tasks.export_runs", {"source": "bogus"}, "source"),
    ("apps.reports.tasks.export_runs", {"user": "x" * 151}, "user"),
    ("apps.reports.tasks.export_runs", {"job": "a\nb"}, "job"),
    ("apps.reports.tasks.export_runs", {"filters": "param.1x=2"}, "filters"),
    ("apps.reports.tasks.export_runs", {"filters": "state=sleeping"}, "filters"),
    ("apps.reports.tasks.export_runs", {"filters": "colour=red"}, "filters"),
    ("apps.reports.tasks.export_runs", {"filters": "date_to=9999-12-31"}, "filters"),
]  # fmt: skip


@pytest.fixture
def api() -> Client:
    return token_client(make_superuser("api-root"))


@pytest.fixture
def web() -> Client:
    client = Client()
    client.force_login(make_superuser())
    return client


def post_json(client: Client, url: str, body) -> object:
    return client.post(url, json.dumps(body), content_type="application/json")


def jobs(*args: str) -> CommandError | None:
    try:
        call_command("jobs", *args, stdout=StringIO(), stderr=StringIO())
    except CommandError as error:
        return error
    return None


def stored_bad_prune() -> Run:
    """A run as an older version (with no bounds) recorded it."""
    return make_run(PRUNE, parameters={"older_than_days": -1}, state=State.SUCCEEDED)


# The prune that deleted everything ----------------------------------------------------


def test_the_web_form_refuses_a_negative_age_with_an_error_on_the_field(web):
    response = web.post(f"/jobs/{PRUNE}/", {"older_than_days": "-1"})
    assert response.status_code == 200
    assert response.context["form"].errors["older_than_days"] == [
        "Ensure this value is greater than or equal to 1."
    ]
    assert not Run.objects.exists()


def test_the_form_tells_the_browser_the_bounds(web):
    page = web.get(f"/jobs/{PRUNE}/").content.decode()
    assert 'min="1"' in page and 'max="3650"' in page


def test_the_api_refuses_a_negative_age_with_422_naming_the_parameter(api):
    response = post_json(api, f"/api/jobs/{PRUNE}/runs", {"parameters": {"older_than_days": -1}})
    assert response.status_code == 422
    body = response.json()
    assert body["errors"] == {
        "older_than_days": ["Ensure this value is greater than or equal to 1."]
    }
    assert "older_than_days" in body["detail"]
    assert not Run.objects.exists()


def test_the_api_schema_shows_the_bounds(api):
    schema = api.get(f"/api/jobs/{PRUNE}").json()["parameters"]
    assert schema["properties"]["older_than_days"] | {"title": ""} == {
        "type": "integer", "minimum": 1, "maximum": 3650, "title": ""}  # fmt: skip


def test_the_cli_refuses_a_negative_age_with_exit_2_and_one_line():
    error = jobs("run", PRUNE, "older_than_days=-1")
    assert error.returncode == 2
    assert str(error) == "older_than_days: Ensure this value is greater than or equal to 1."
    assert not Run.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_worker_refuses_a_message_outside_the_bounds_and_deletes_nothing(celery_worker):
    """A message sent past the catalog (an old schedule row, `celery call`) fails."""
    old = timezone.now() - dt.timedelta(days=400)
    kept = make_run(state=State.SUCCEEDED, queued_at=old, finished_at=old)
    sent = prune_runs.apply_async(kwargs={"older_than_days": -1})
    run = wait_for(lambda: Run.objects.filter(task_id=sent.id, state=State.FAILED).first())
    stored = wait_for(lambda: TaskResult.objects.filter(task_id=run.task_id).first())
    assert json.loads(stored.result)["exc_type"] == "ValueError"
    assert "older_than_days: Ensure this value is greater than or equal to 1." in stored.result
    assert Run.objects.filter(pk=kept.pk).exists()


def test_the_admin_schedule_form_refuses_a_negative_age_on_its_field(web):
    data = form_data(name="prune everything", regtask=PRUNE, **{"param-older_than_days": "-1"})
    response = web.post(reverse("admin:django_celery_beat_periodictask_add"), data)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors == {"param-older_than_days": [AT_LEAST_1]}
    assert not PeriodicTask.objects.filter(name="prune everything").exists()


# Re-running an old record ---------------------------------------------------------------


def test_run_again_from_the_web_refuses_a_stored_run_outside_the_bounds(web):
    old = stored_bad_prune()
    response = web.post(f"/runs/{old.pk}/rerun/")
    assert response.status_code == 302 and response["Location"] == f"/runs/{old.pk}/"
    (message,) = get_messages(response.wsgi_request)
    assert str(message) == (
        "Not run again: older_than_days: Ensure this value is greater than or equal to 1."
    )
    assert list(Run.objects.all()) == [old]


def test_retry_through_the_api_refuses_a_stored_run_outside_the_bounds(api):
    old = stored_bad_prune()
    response = api.post(f"/api/runs/{old.pk}/retry")
    assert response.status_code == 422
    assert response.json()["errors"] == {
        "older_than_days": ["Ensure this value is greater than or equal to 1."]
    }
    assert list(Run.objects.all()) == [old]


def test_retry_from_the_cli_refuses_a_stored_run_outside_the_bounds():
    old = stored_bad_prune()
    error = jobs("retry", str(old.pk))
    assert error.returncode == 2
    assert str(error) == "older_than_days: Ensure this value is greater than or equal to 1."
    assert list(Run.objects.all()) == [old]


def test_a_stored_run_within_the_bounds_is_run_again_with_its_parameters(api):
    old = make_run(PRUNE, parameters={"older_than_days": 30}, state=State.SUCCEEDED)
    response = api.post(f"/api/runs/{old.pk}/retry")
    assert response.status_code == 201
    assert Run.objects.get(rerun_of=old).parameters == {"older_than_days": 30}


def test_retry_in_the_admin_refuses_a_stored_result_outside_the_bounds(web):
    old = stored_bad_prune()
    old.state = State.FAILED
    old.save()
    TaskResult.objects.create(task_id=old.task_id, task_name=PRUNE, status="FAILURE",
                              task_kwargs=json.dumps("{'older_than_days': -1}"))  # fmt: skip
    action = {"action": "retry_failed", "_selected_action": [TaskResult.objects.get().pk]}
    response = web.post("/admin/django_celery_results/taskresult/", action, follow=True)
    assert "older_than_days" in response.content.decode()
    assert list(Run.objects.all()) == [old]


# Every built-in job --------------------------------------------------------------------


@pytest.mark.parametrize(("job", "parameters", "field"), OUT_OF_RANGE)
def test_each_built_in_job_refuses_values_outside_its_bounds(api, job, parameters, field):
    response = post_json(api, f"/api/jobs/{job}/runs", {"parameters": parameters})
    assert response.status_code == 422, response.json()
    assert list(response.json()["errors"]) == [field]
    assert not Run.objects.exists()


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e309"])
def test_a_float_that_is_not_finite_is_refused_from_the_cli(value):
    error = jobs("run", "apps.checks.tasks.http_check", "url=https://example.com/",
                 f"timeout_s={value}")  # fmt: skip
    assert error.returncode == 2 and str(error).startswith("timeout_s: ")


@pytest.mark.parametrize(("raw", "status"), [("1e309", 422), ("-1e309", 422), ("NaN", 400),
                                             ("Infinity", 400)])  # fmt: skip
def test_a_float_that_is_not_finite_is_refused_by_the_api(api, raw, status):
    body = '{"parameters": {"url": "https://example.com/", "timeout_s": RAW}}'.replace("RAW", raw)
    response = api.post("/api/jobs/apps.checks.tasks.http_check/runs", body,
                        content_type="application/json")  # fmt: skip
    assert response.status_code == status
    if status == 422:
        assert list(response.json()["errors"]) == ["timeout_s"]
    assert not Run.objects.exists()


def test_the_edges_of_each_range_are_accepted(api):
    for job, parameters in [
        (PRUNE, {"older_than_days": 1}),
        (PRUNE, {"older_than_days": 3650}),
        ("apps.demo.tasks.countdown", {"seconds": 0}),
        ("apps.maintenance.tasks.backup_database", {"keep": 1}),
        ("apps.checks.tasks.http_check", {"url": "https://example.com/", "timeout_s": 120}),
        ("apps.reports.tasks.export_runs", {"date_to": "2099-12-31", "state": "failed"}),
        ("apps.reports.tasks.export_runs", {"date_from": "2000-01-01"}),
    ]:
        response = post_json(api, f"/api/jobs/{job}/runs", {"parameters": parameters})
        assert response.status_code == 201, (job, response.json())
