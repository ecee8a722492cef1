"""A job's result that is not a finite number (Infinity, -Infinity, NaN; Celery's JSON
stores it as such) is shown by name, the string "Infinity", wherever it is nested: the
API and `jobs status --json` stay standard JSON that strict parsers read, and the run
page shows the same text."""

import json
import logging
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import RequestFactory
from django.utils import timezone
from django_celery_results.models import TaskResult
from kombu.utils.json import dumps as celery_json

from apps.api.api import api
from apps.demo.tasks_api.tasks import divide
from apps.jobs import cli
from apps.jobs.models import Run, State
from tests.api.helpers import token_client
from tests.helpers import make_run, make_superuser, wait_for

INF, NAN = float("inf"), float("nan")
NESTED = {"ratio": [NAN, -INF], "deep": {"x": INF}, "ok": 1.5}
NESTED_SHOWN = {"ratio": ["NaN", "-Infinity"], "deep": {"x": "Infinity"}, "ok": 1.5}


def strict_json(text):
    """JSON as a strict parser reads it: NaN and Infinity are not JSON."""

    def refuse(name):
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


def finished_with(result) -> Run:
    """A succeeded run whose result Celery stored as its JSON serializer writes it."""
    run = make_run(divide.module_path, state=State.SUCCEEDED, started_at=timezone.now(),
                   finished_at=timezone.now(), parameters={"x": 1e308, "y": 1e-308})  # fmt: skip
    TaskResult.objects.create(task_id=run.task_id, task_name=run.job_name, status="SUCCESS",
                              result=celery_json(result), content_type="application/json",
                              content_encoding="utf-8")  # fmt: skip
    return run


def status(run: Run, *options) -> str:
    out = StringIO()
    call_command("jobs", "status", str(run.pk), *options, stdout=out)
    return out.getvalue()


@pytest.fixture
def root(client):
    client.force_login(make_superuser())
    return client


@pytest.mark.django_db
@pytest.mark.parametrize(("result", "shown"), [(INF, "Infinity"), (-INF, "-Infinity"),
                                               (NAN, "NaN"), (NESTED, NESTED_SHOWN)])  # fmt: skip
def test_a_result_that_is_not_finite_is_shown_by_name_in_the_api_the_cli_and_the_page(
    root, result, shown
):
    run = finished_with(result)
    assert strict_json(root.get(f"/api/runs/{run.pk}").content)["result"] == shown
    assert strict_json(status(run, "--json"))["result"] == shown
    assert f"result:       {cli.show_value(shown)}\n" in status(run)
    page = root.get(f"/runs/{run.pk}/").content.decode()
    expected = json.dumps(shown, indent=2, sort_keys=True).replace('"', "&quot;")
    assert f'<pre class="result">{expected}</pre>' in page


@pytest.mark.django_db
def test_the_api_never_writes_nan_or_infinity_even_if_one_reaches_its_renderer(caplog):
    request = RequestFactory().get("/api/runs/1")
    with caplog.at_level(logging.ERROR, logger="apps.api.api"):
        text = api.renderer.render(request, {"a": [INF, NAN], "b": 1}, response_status=200)
    assert strict_json(text) == {"a": ["Infinity", "NaN"], "b": 1}
    assert "not finite" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_divide_returning_infinity_through_the_worker_reads_as_standard_json(celery_worker):
    client = token_client(make_superuser())
    started = client.post(f"/api/jobs/{divide.module_path}/runs",
                          {"parameters": {"x": 1e308, "y": 1e-308}},
                          content_type="application/json")  # fmt: skip
    assert started.status_code == 201
    run = Run.objects.get(pk=started.json()["id"])
    wait_for(lambda: Run.objects.filter(pk=run.pk, state=State.SUCCEEDED).exists())
    assert strict_json(client.get(f"/api/runs/{run.pk}").content)["result"] == "Infinity"
    assert strict_json(status(run, "--json"))["result"] == "Infinity"
