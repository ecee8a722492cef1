"""Housekeeping jobs every Django site needs. Each is a thin task over a plain function."""

from datetime import timedelta
from typing import Annotated

from celery import current_task

from apps.jobs.catalog import job
from apps.jobs.params import Choices, MaxLength, Range
from apps.jobs.progress import report_progress

from . import backup, commands, retention, sessions


@job(
    title="Back up the database",
    group="Maintenance",
    autoretry_for=(backup.BackupBusy,),
    retry_backoff=30,
    retry_backoff_max=300,
    max_retries=3,
)
def backup_database(keep: Annotated[int, Range(1, 1000)] = 7) -> dict:
    """Copy the database to BACKUP_DIR with a timestamped name; keep the newest `keep`.

    SQLite is copied with its online backup API, PostgreSQL with pg_dump (custom
    format), while the site keeps running. Staff download backups from the admin.
    """
    report_progress(0, 1, "copying the database")
    result = backup.backup_database(keep)
    report_progress(1, 1, f"wrote {result['file']}")
    return result


@job(title="Clear expired sessions", group="Maintenance")
def clear_sessions() -> dict:
    """Delete expired sessions, as `manage.py clearsessions` does, and count them."""
    return sessions.clear_expired_sessions()


@job(title="Prune old runs and results", group="Maintenance")
def prune_runs(older_than_days: Annotated[int, Range(1, retention.MAX_AGE_DAYS)]) -> dict:
    """Delete finished runs, and stored results, older than the given number of days.

    Started by a person, it deletes only the runs that person may see (and their
    results); from the built-in schedule, the CLI or a shell, every run. Steps of a
    pipeline still running are kept. Deletes in batches of 5,000
    (apps.maintenance.retention), so it is safe on large tables.
    """
    return retention.prune_as_run(current_task.request.id, timedelta(days=older_than_days))


@job(
    title="Run a management command",
    group="Maintenance",
    idempotent=False,
    check=commands.check_request,
)
def run_command(
    command: Annotated[str, Choices(commands.allowed_commands)],
    arguments: Annotated[list[str], MaxLength(commands.MAX_ARGUMENT_LENGTH)] | None = None,
) -> dict:
    """Run one management command from RUN_COMMAND_ALLOWLIST and keep its output.

    Only the arguments listed for the command are accepted, and never a path. The run
    fails when the command fails.
    """
    return commands.run_command(command, arguments or ())
