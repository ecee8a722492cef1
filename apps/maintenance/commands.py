"""Run one allow-listed management command in-process and capture what it prints.

settings.RUN_COMMAND_ALLOWLIST maps each command to the arguments it may be given
(shell-style patterns, one per argument; none listed means no arguments). Whatever the
list says, the commands never_allowed() names are refused (Django's that touch secrets,
files or code, and every command Django does not ship), and so is any argument that
names a path or an option that takes one (`--output`, `--pythonpath`, `--settings`, ...).
"""

import io
import re
from collections.abc import Mapping, Sequence
from fnmatch import fnmatchcase

from django.conf import settings
from django.core.management import call_command, get_commands
from django.core.management.base import CommandError

from apps.jobs.catalog import ParameterError

MAX_OUTPUT_CHARS = 100_000
MAX_ARGUMENT_LENGTH = 200

# Commands that read or write secrets or files, change users, run code or the
# database's own shell, or serve: never run from a job, even if listed.
DJANGO_NEVER_ALLOWED = frozenset({
    "dumpdata", "loaddata", "shell", "dbshell", "createsuperuser", "changepassword",
    "flush", "sqlflush", "sqlsequencereset", "runserver", "testserver", "test", "migrate",
    "makemigrations", "squashmigrations", "optimizemigration", "startapp", "startproject",
    "collectstatic", "compilemessages", "makemessages", "inspectdb", "createcachetable",
    "remove_stale_contenttypes", "sendtestemail", "diffsettings",
})  # fmt: skip


def never_allowed() -> frozenset[str]:
    """DJANGO_NEVER_ALLOWED and every command that Django itself does not ship: those of
    Switchyard's own apps (`jobs`, `schedules`, `queues`, `workers`, ...), operators'
    tools that would bypass the per-job permissions, bounds or control rules that the
    site's doors apply, and those of third-party apps (django-auditlog's `auditlogflush`
    deletes the whole audit log), whose every argument nobody here has thought about."""
    not_django = {name for name, app in get_commands().items() if not app.startswith("django.")}
    return DJANGO_NEVER_ALLOWED | not_django


# An argument that is a path, or an option that takes a path or changes what code runs.
_PATH_LIKE = re.compile(r"[/\\]|^~|^\.\.?$|^-[^-]*o")
_PATH_OPTION = re.compile(r"^--?[\w-]*(output|path|file|dir|folder|settings|template)", re.I)


class CommandNotAllowed(ValueError):
    """The command, or one of its arguments, is not allowed; nothing was run."""


class CommandFailed(RuntimeError):
    """The command ran and failed (CommandError or a non-zero exit)."""


def allowlist() -> dict[str, tuple[str, ...]]:
    """RUN_COMMAND_ALLOWLIST without the commands that are never allowed.

    A plain list of names (an older form of the setting) allows no arguments.
    """
    listed = settings.RUN_COMMAND_ALLOWLIST
    if not isinstance(listed, Mapping):
        listed = dict.fromkeys(listed, ())
    never = never_allowed()
    return {name: tuple(args) for name, args in listed.items() if name not in never}


def allowed_commands() -> list[str]:
    return list(allowlist())


def refusal(command: str, arguments: Sequence[str] = ()) -> tuple[str, str] | None:
    """(parameter, reason) when the command or an argument is not allowed, else None."""
    patterns = allowlist().get(command)
    if patterns is None:
        allowed = ", ".join(allowed_commands()) or "none"
        return "command", f"{command!r} is not an allowed command (allowed: {allowed})"
    for argument in arguments:
        reason = argument_refusal(command, argument, patterns)
        if reason:
            return "arguments", reason
    return None


def argument_refusal(command: str, argument: str, patterns: Sequence[str]) -> str | None:
    if _PATH_LIKE.search(argument) or _PATH_OPTION.match(argument):
        return f"{argument!r}: paths and options that take a path are not allowed"
    if not any(fnmatchcase(argument, pattern) for pattern in patterns):
        allowed = " ".join(patterns) or "none"
        return f"{argument!r} is not an allowed argument of {command} (allowed: {allowed})"
    return None


def check_request(command: str, arguments: Sequence[str] | None = None, **_) -> None:
    """The run_command job's check at submission: ParameterError naming the parameter."""
    refused = refusal(command, arguments or ())
    if refused:
        raise ParameterError({refused[0]: [refused[1]]})


def run_command(command: str, arguments: list[str] | tuple[str, ...] = ()) -> dict:
    """Run `command` with `arguments` via call_command; no shell, no subprocess.

    Returns the captured output; raises CommandFailed (with the output) when it fails.
    """
    refused = refusal(command, arguments)
    if refused:
        raise CommandNotAllowed(refused[1])
    stdout, stderr = io.StringIO(), io.StringIO()
    try:
        call_command(command, *arguments, stdout=stdout, stderr=stderr)
    except CommandError as exc:
        raise CommandFailed(_failure(command, str(exc), stdout, stderr)) from exc
    except SystemExit as exc:
        if exc.code not in (None, 0):
            raise CommandFailed(_failure(command, f"exit {exc.code}", stdout, stderr)) from exc
    return {
        "command": command,
        "arguments": list(arguments),
        "output": _clip(stdout.getvalue()),
        "errors": _clip(stderr.getvalue()),
    }


def _failure(command: str, reason: str, stdout: io.StringIO, stderr: io.StringIO) -> str:
    output = "\n".join(part for part in (stdout.getvalue(), stderr.getvalue()) if part)
    return f"{command} failed: {reason}" + (f"\n{_clip(output)}" if output else "")


def _clip(text: str) -> str:
    if len(text) <= MAX_OUTPUT_CHARS:
        return text
    return text[:MAX_OUTPUT_CHARS] + f"\n[... {len(text) - MAX_OUTPUT_CHARS} more characters]"
