"""run_command: only allow-listed management commands, output captured, failures fail."""

import pytest

from apps.maintenance.commands import CommandFailed, CommandNotAllowed, run_command

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def allowlist(settings):
    settings.RUN_COMMAND_ALLOWLIST = ["check", "showmigrations", "makemigrations"]


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
    with pytest.raises(CommandNotAllowed, match="allowed: check, showmigrations, makemigrations"):
        run_command("shell")


def test_a_command_error_fails_with_the_reason():
    with pytest.raises(CommandFailed, match=r"makemigrations failed: .*unrecognized arguments"):
        run_command("makemigrations", ["--no-such-option"])


def test_a_non_zero_exit_fails_with_the_captured_output():
    with pytest.raises(CommandFailed, match=r"(?s)failed: exit 2.*No installed app"):
        run_command("showmigrations", ["no_such_app"])


def test_an_exit_with_code_zero_is_a_success(monkeypatch):
    def exits_cleanly(name, *args, stdout, stderr):
        stdout.write("all good\n")
        raise SystemExit(0)

    monkeypatch.setattr("apps.maintenance.commands.call_command", exits_cleanly)
    assert run_command("check")["output"] == "all good\n"


def test_a_successful_zero_exit_is_not_a_failure():
    result = run_command("makemigrations", ["--check", "--dry-run", "jobs"])
    assert "No changes detected" in result["output"]


def test_bad_arguments_fail_without_running_anything_else():
    with pytest.raises(CommandFailed):
        run_command("check", ["--deploy", "--fail-level", "NOPE"])
