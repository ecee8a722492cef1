"""Run one allow-listed management command in-process and capture what it prints."""

import io

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

MAX_OUTPUT_CHARS = 100_000


class CommandNotAllowed(ValueError):
    """The command is not in settings.RUN_COMMAND_ALLOWLIST; nothing was run."""


class CommandFailed(RuntimeError):
    """The command ran and failed (CommandError or a non-zero exit)."""


def allowed_commands() -> list[str]:
    return list(settings.RUN_COMMAND_ALLOWLIST)


def run_command(command: str, arguments: list[str] | tuple[str, ...] = ()) -> dict:
    """Run `command` with `arguments` via call_command; no shell, no subprocess.

    Returns the captured output; raises CommandFailed (with the output) when it fails.
    """
    if command not in allowed_commands():
        allowed = ", ".join(allowed_commands()) or "none"
        raise CommandNotAllowed(f"{command!r} is not an allowed command (allowed: {allowed})")
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
