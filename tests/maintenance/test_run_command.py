"""run_command: only allow-listed commands, each with its allowed arguments, never a path;
refused at submission (form error, API 422, CLI exit 2) and again by the worker."""

import json
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.test import Client

from apps.jobs.models import Run
from apps.maintenance.commands import CommandFailed, CommandNotAllowed, run_command
from project.settings import command_patterns, env_list
from tests.api.helpers import token_client
from tests.helpers import make_superuser

pytestmark = pytest.mark.django_db

RUN_COMMAND = "apps.maintenance.tasks.run_command"
# What a careless operator might list: the attacks below must still be refused.
CARELESS = {
    "check": ("--deploy", "--fail-level=*"),
    "showmigrations": ("--list", "[a-z]*"),
    "makemigrations": ("*",),
    "dumpdata": ("*",),
    "loaddata": ("*",),
    "shell": ("*",),
    "diffsettings": (),
    "sqlmigrate": ("*",),
}
ATTACKS = [
    ({"command": "dumpdata", "arguments": ["auth.user"]}, "command"),
    ({"command": "dumpdata", "arguments": ["--output", "/tmp/out.json"]}, "command"),
    ({"command": "loaddata", "arguments": ["/tmp/superuser.json"]}, "command"),
    ({"command": "shell", "arguments": ["-c", "print(1)"]}, "command"),
    ({"command": "diffsettings"}, "command"),
    ({"command": "sqlmigrate", "arguments": ["--output=x.sql"]}, "arguments"),
    ({"command": "sqlmigrate", "arguments": ["jobs", "../../etc/x"]}, "arguments"),
    ({"command": "showmigrations", "arguments": ["--pythonpath=/tmp/evil"]}, "arguments"),
    ({"command": "showmigrations", "arguments": ["--settings=evil"]}, "arguments"),
    ({"command": "showmigrations", "arguments": ["--database=default"]}, "arguments"),
    ({"command": "check", "arguments": ["--tag", "models"]}, "arguments"),
]


@pytest.fixture(autouse=True)
def allowlist(settings):
    settings.RUN_COMMAND_ALLOWLIST = CARELESS


@pytest.fixture
def web() -> Client:
    client = Client()
    client.force_login(make_superuser())
    return client


# The plain function (what the worker runs) -------------------------------------------


def test_an_allowed_command_runs_and_its_output_is_returned():
    result = run_command("showmigrations", ["jobs"])
    assert result["command"] == "showmigrations" and result["arguments"] == ["jobs"]
    assert "[X] 0001_initial" in result["output"]


def test_a_command_outside_the_allowlist_is_refused_before_running(monkeypatch):
    ran = []
    monkeypatch.setattr("apps.maintenance.commands.call_command", lambda *a, **k: ran.append(a))
    with pytest.raises(CommandNotAllowed, match="'flush' is not an allowed command"):
        run_command("flush", ["--no-input"])
    assert ran == []


def test_the_refusal_names_the_allowed_commands():
    with pytest.raises(CommandNotAllowed, match=r"allowed: check, showmigrations, sqlmigrate\)"):
        run_command("createsuperuser")


@pytest.mark.parametrize(("request_", "field"), ATTACKS)
def test_the_worker_refuses_each_attack_even_when_the_command_is_listed(
    request_, field, monkeypatch
):
    ran = []
    monkeypatch.setattr("apps.maintenance.commands.call_command", lambda *a, **k: ran.append(a))
    with pytest.raises(CommandNotAllowed):
        run_command(request_["command"], request_.get("arguments", []))
    assert ran == []


def test_an_argument_not_listed_for_the_command_is_refused_naming_what_is_allowed():
    expected = (
        r"'--plan' is not an allowed argument of showmigrations \(allowed: --list \[a-z\]\*\)"
    )
    with pytest.raises(CommandNotAllowed, match=expected):
        run_command("showmigrations", ["--plan"])


@pytest.mark.parametrize(
    "command",
    ["queues", "workers", "ratelimits", "check_alerts", "jobs", "schedules", "auditlogflush"],
)
def test_commands_django_does_not_ship_are_refused_even_when_listed(
    settings, monkeypatch, command
):
    """Operators' tools: `queues purge` would skip the control permission, `jobs` the
    per-job ones; django-auditlog's `auditlogflush` deletes the audit log."""
    settings.RUN_COMMAND_ALLOWLIST = {command: ("*", "*", "*")}
    ran = []
    monkeypatch.setattr("apps.maintenance.commands.call_command", lambda *a, **k: ran.append(a))
    with pytest.raises(CommandNotAllowed, match=f"{command!r} is not an allowed command"):
        run_command(command, ["purge", "celery", "--yes"])
    assert ran == []


def test_purging_a_queue_through_run_command_is_a_422_naming_the_command(settings):
    settings.RUN_COMMAND_ALLOWLIST = {"queues": ("pause", "resume", "purge", "celery", "--yes")}
    response = token_client(make_superuser()).post(
        f"/api/jobs/{RUN_COMMAND}/runs",
        {"parameters": {"command": "queues", "arguments": ["purge", "celery", "--yes"]}},
        content_type="application/json",
    )
    assert response.status_code == 422
    assert "command" in response.content.decode()
    assert not Run.objects.exists()


def test_a_command_listed_without_arguments_takes_none(settings):
    settings.RUN_COMMAND_ALLOWLIST = {"check": ()}
    assert "no issues" in run_command("check")["output"]
    with pytest.raises(CommandNotAllowed, match=r"\(allowed: none\)"):
        run_command("check", ["--deploy"])


def test_a_plain_list_of_names_allows_those_commands_without_arguments(settings):
    settings.RUN_COMMAND_ALLOWLIST = ["showmigrations", "dumpdata"]
    assert run_command("showmigrations")["command"] == "showmigrations"
    with pytest.raises(CommandNotAllowed):
        run_command("showmigrations", ["jobs"])
    with pytest.raises(CommandNotAllowed, match="'dumpdata' is not an allowed command"):
        run_command("dumpdata")


def test_a_command_error_fails_with_the_reason():
    with pytest.raises(
        CommandFailed, match=r"sqlmigrate failed: No installed app with label 'nope'"
    ):
        run_command("sqlmigrate", ["nope", "0001"])


def test_a_non_zero_exit_fails_with_the_captured_output():
    with pytest.raises(CommandFailed, match=r"(?s)failed: exit 2.*No installed app"):
        run_command("showmigrations", ["no_such_app"])


def test_an_exit_with_code_zero_is_a_success(monkeypatch):
    def exits_cleanly(name, *args, stdout, stderr):
        stdout.write("all good\n")
        raise SystemExit(0)

    monkeypatch.setattr("apps.maintenance.commands.call_command", exits_cleanly)
    assert run_command("check")["output"] == "all good\n"


def test_bad_arguments_fail_without_running_anything_else():
    with pytest.raises(CommandFailed):
        run_command("check", ["--deploy", "--fail-level=NOPE"])


# At submission: web form, API, CLI ---------------------------------------------------


def test_the_form_offers_only_the_allowed_commands_as_choices(web):
    page = web.get(f"/jobs/{RUN_COMMAND}/").content.decode()
    assert '<option value="showmigrations">' in page
    assert '<option value="dumpdata">' not in page and '<option value="shell">' not in page


@pytest.mark.parametrize(("request_", "field"), ATTACKS)
def test_each_attack_from_the_web_form_is_a_form_error_on_its_field(web, request_, field):
    data = {"command": request_["command"], "arguments": "\n".join(request_.get("arguments", []))}
    response = web.post(f"/jobs/{RUN_COMMAND}/", data)
    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert not Run.objects.exists()


@pytest.mark.parametrize(("request_", "field"), ATTACKS)
def test_each_attack_through_the_api_is_a_422_naming_the_parameter(request_, field):
    client = token_client(make_superuser())
    body = json.dumps({"parameters": request_})
    response = client.post(f"/api/jobs/{RUN_COMMAND}/runs", body, content_type="application/json")
    assert response.status_code == 422
    assert list(response.json()["errors"]) == [field]
    assert not Run.objects.exists()


@pytest.mark.parametrize(("request_", "field"), ATTACKS)
def test_each_attack_from_the_cli_exits_2_naming_the_parameter(request_, field):
    tokens = [f"command={request_['command']}"]
    if request_.get("arguments"):
        tokens.append("arguments=" + "\n".join(request_["arguments"]))
    with pytest.raises(CommandError) as refused:
        call_command("jobs", "run", RUN_COMMAND, *tokens, stdout=StringIO())
    assert refused.value.returncode == 2
    assert str(refused.value).startswith(f"{field}: ")
    assert not Run.objects.exists()


def test_the_loaddata_attack_creates_no_user(tmp_path, web):
    fixture = tmp_path / "superuser.json"
    fields = {"username": "mallory", "password": "x", "is_superuser": True, "is_staff": True}
    fixture.write_text(json.dumps([{"model": "auth.user", "pk": 999, "fields": fields}]))
    web.post(f"/jobs/{RUN_COMMAND}/", {"command": "loaddata", "arguments": str(fixture)})
    with pytest.raises(CommandNotAllowed):
        run_command("loaddata", [str(fixture)])
    assert not get_user_model().objects.filter(username="mallory").exists()


def test_an_allowed_request_is_accepted_at_submission(web):
    response = web.post(f"/jobs/{RUN_COMMAND}/", {"command": "showmigrations",
                                                      "arguments": "--list\njobs"})  # fmt: skip
    assert response.status_code == 302
    assert Run.objects.get().parameters == {"command": "showmigrations",
                                            "arguments": ["--list", "jobs"]}  # fmt: skip


# The setting, from the environment ----------------------------------------------------


def read_allowlist() -> dict:
    """What project/settings.py does with the variable."""
    return command_patterns("RUN_COMMAND_ALLOWLIST", env_list("RUN_COMMAND_ALLOWLIST"))


def test_the_environment_format_lists_each_commands_argument_patterns(monkeypatch):
    monkeypatch.setenv("RUN_COMMAND_ALLOWLIST", "check:--deploy --tag=*, clearsessions")
    assert read_allowlist() == {
        "check": ("--deploy", "--tag=*"),
        "clearsessions": (),
    }


@pytest.mark.parametrize("raw", ["check;rm -rf /", "Check", ":--deploy", "manage.py check"])
def test_a_malformed_command_name_in_the_environment_is_an_error(monkeypatch, raw):
    monkeypatch.setenv("RUN_COMMAND_ALLOWLIST", raw)
    with pytest.raises(ImproperlyConfigured, match="RUN_COMMAND_ALLOWLIST"):
        read_allowlist()


def test_manage_py_check_warns_about_listed_commands_that_never_run(settings):
    out, err = StringIO(), StringIO()
    call_command("check", stdout=out, stderr=err)
    warning = err.getvalue() + out.getvalue()
    assert "maintenance.W001" in warning
    assert "lists diffsettings, dumpdata, loaddata, makemigrations, shell" in warning
    settings.RUN_COMMAND_ALLOWLIST = {"check": (), "queues": ("purge",), "workers": ()}
    err = StringIO()
    call_command("check", stdout=StringIO(), stderr=err)
    assert "lists queues, workers, which run_command never runs" in err.getvalue()
    settings.RUN_COMMAND_ALLOWLIST = {"check": ()}
    out = StringIO()
    call_command("check", stdout=out, stderr=StringIO())
    assert "maintenance.W001" not in out.getvalue()
