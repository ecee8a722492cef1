"""Oversized input (a 10 MB parameter, a 100,000-item list) from the web form, the CLI
and the API: refused with a message that says why, and nothing stored or sent."""

import json

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from apps.jobs.models import Run
from tests.api.helpers import token_client
from tests.helpers import make_superuser

pytestmark = pytest.mark.django_db

HTTP_CHECK = "apps.checks.tasks.http_check"  # url: str
RUN_COMMAND = "apps.maintenance.tasks.run_command"  # arguments: list[str]
TEN_MB = "x" * 10 * 1024 * 1024
MANY = ["a"] * 100_000


@pytest.fixture
def browser() -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(make_superuser())
    return client


def test_a_10_mb_parameter_from_the_web_form_is_refused_as_too_large(browser):
    response = browser.post(f"/jobs/{HTTP_CHECK}/", {"url": TEN_MB})
    assert response.status_code == 400
    assert "too large" in response.content.decode()
    assert not Run.objects.exists()


def test_a_100000_item_list_from_the_web_form_is_refused_naming_the_limit(browser):
    response = browser.post(f"/jobs/{RUN_COMMAND}/", {"command": "check",
                                                      "arguments": "\n".join(MANY)})  # fmt: skip
    assert response.status_code == 200
    assert "at most 1000 items, got 100000" in response.content.decode()
    assert not Run.objects.exists()


def test_100000_form_fields_are_refused_as_too_large(browser):
    response = browser.post(f"/jobs/{RUN_COMMAND}/", {"command": "check", "arguments": MANY})
    assert response.status_code == 400
    assert "too many fields" in response.content.decode()
    assert not Run.objects.exists()


def test_a_long_text_under_the_upload_limit_is_refused_by_the_form(browser):
    response = browser.post(f"/jobs/{HTTP_CHECK}/", {"url": "https://example.com/" + "x" * 10_000})
    assert "at most 2048 characters" in response.content.decode()
    assert not Run.objects.exists()


def test_a_10_mb_parameter_from_the_cli_is_refused_without_echoing_it():
    with pytest.raises(CommandError) as refused:
        call_command("jobs", "run", HTTP_CHECK, f"url={TEN_MB}")
    assert str(refused.value).startswith("url: Ensure this value has at most 2048 characters")
    assert len(str(refused.value)) < 500
    assert not Run.objects.exists()


def test_a_100000_item_list_from_the_cli_is_refused_naming_the_parameter():
    with pytest.raises(CommandError) as refused:
        call_command("jobs", "run", RUN_COMMAND, "command=check", f"arguments={','.join(MANY)}")
    assert "arguments: at most 1000 items, got 100000" in str(refused.value)
    assert not Run.objects.exists()


def test_a_10_mb_request_to_the_api_is_refused_with_413():
    client = token_client(make_superuser())
    body = json.dumps({"parameters": {"url": TEN_MB}})
    response = client.post(f"/api/jobs/{HTTP_CHECK}/runs", body, content_type="application/json")
    assert response.status_code == 413
    assert response.json()["detail"] == "The request body is too large."
    assert not Run.objects.exists()


def test_a_100000_item_list_to_the_api_is_refused_naming_the_parameter():
    client = token_client(make_superuser())
    body = json.dumps({"parameters": {"command": "check", "arguments": MANY}})
    response = client.post(f"/api/jobs/{RUN_COMMAND}/runs", body, content_type="application/json")
    assert response.status_code == 422
    assert response.json()["errors"]["arguments"] == ["at most 1000 items, got 100000"]
    assert not Run.objects.exists()
