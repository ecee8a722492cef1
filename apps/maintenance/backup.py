"""Database backups: a consistent copy while the site runs, named by UTC time.

SQLite is copied with its online backup API; PostgreSQL with `pg_dump -Fc`. A copy is
written under a temporary name and renamed when complete, so a listed backup is always
whole. Restoring is described in docs/backup.md.
"""

import datetime as dt
import glob
import re
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import connections
from django.utils import timezone

NAME_PATTERN = re.compile(r"^switchyard-\d{8}T\d{6}Z(?:-\d{1,3})?\.(?:sqlite3|dump)$")
EXTENSIONS = {"sqlite": "sqlite3", "postgresql": "dump"}


class BackupError(Exception):
    """The backup could not be made (unsupported database, pg_dump failed...)."""


class BackupBusy(BackupError):
    """A transient failure (database locked, server unreachable): worth a retry."""


# pg_dump's messages when the server is not there (yet): worth retrying.
_PG_UNREACHABLE = ("could not connect", "connection to server", "the database system is")


@dataclass(frozen=True)
class Backup:
    name: str
    path: Path
    size: int
    modified: dt.datetime


def backup_dir() -> Path:
    return Path(settings.BACKUP_DIR)


def list_backups(folder: Path | None = None) -> list[Backup]:
    """Complete backups in the folder, newest first; other files are ignored."""
    folder = folder or backup_dir()
    if not folder.is_dir():
        return []
    found = [_describe(p) for p in folder.iterdir() if NAME_PATTERN.match(p.name) and p.is_file()]
    return sorted(found, key=lambda b: b.name, reverse=True)


def _describe(path: Path) -> Backup:
    stat = path.stat()
    modified = dt.datetime.fromtimestamp(stat.st_mtime, tz=dt.UTC)
    return Backup(name=path.name, path=path, size=stat.st_size, modified=modified)


def find_backup(name: str, folder: Path | None = None) -> Backup | None:
    """The backup called `name`, or None: only pattern names directly in the folder."""
    if not NAME_PATTERN.match(name):
        return None
    return next((b for b in list_backups(folder) if b.name == name), None)


def backup_database(
    keep: int = 7, *, alias: str = "default", folder: Path | None = None, now=None
) -> dict:
    """Copy the database to a new timestamped file, then keep only the newest `keep`."""
    if keep < 1:
        raise ValueError("keep must be at least 1")
    connection = connections[alias]
    vendor = connection.vendor
    if vendor not in EXTENSIONS:
        raise BackupError(f"backups of {vendor} databases are not supported")
    folder = folder or backup_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = _new_path(folder, EXTENSIONS[vendor], now or timezone.now())
    partial = target.with_name(f".{target.name}.partial")
    try:
        copy = _copy_sqlite if vendor == "sqlite" else _dump_postgresql
        copy(connection.settings_dict, partial)
        partial.rename(target)
    finally:
        partial.unlink(missing_ok=True)
    removed = prune_backups(keep, folder)
    return {"file": target.name, "bytes": target.stat().st_size, "removed": removed}


def _new_path(folder: Path, extension: str, now: dt.datetime) -> Path:
    stamp = now.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    path = folder / f"switchyard-{stamp}.{extension}"
    counter = 1
    while path.exists():  # two backups within one second
        counter += 1
        path = folder / f"switchyard-{stamp}-{counter}.{extension}"
    return path


def prune_backups(keep: int, folder: Path | None = None) -> list[str]:
    """Delete all but the newest `keep` backups; return the names removed."""
    stale = list_backups(folder)[keep:]
    for backup in stale:
        backup.path.unlink(missing_ok=True)
    return [b.name for b in stale]


# SQLite -------------------------------------------------------------------------------


def _copy_sqlite(settings_dict: dict, target: Path) -> None:
    source_name = str(settings_dict["NAME"])
    if source_name == ":memory:" or source_name.startswith("file::memory:"):
        raise BackupError("an in-memory SQLite database cannot be backed up")
    # One step (pages=-1): a stepwise copy restarts whenever another connection writes,
    # which on a busy site can mean forever. Under WAL the read does not block writers.
    source = sqlite3.connect(source_name, timeout=20)
    destination = sqlite3.connect(target)
    try:
        with destination:
            source.backup(destination, pages=-1)
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise BackupBusy(f"SQLite is busy: {exc}") from exc
        raise
    finally:
        destination.close()
        source.close()


# PostgreSQL ---------------------------------------------------------------------------


def _dump_postgresql(settings_dict: dict, target: Path) -> None:
    command = [pg_dump_path(), "--format=custom", "--file", str(target)]
    result = subprocess.run(
        command, env=_libpq_env(settings_dict), capture_output=True, text=True, timeout=3600
    )
    if result.returncode != 0:
        message = f"pg_dump failed ({result.returncode}): {result.stderr.strip()}"
        transient = any(text in result.stderr for text in _PG_UNREACHABLE)
        raise (BackupBusy if transient else BackupError)(message)


def pg_dump_path() -> str:
    """pg_dump from PATH, else from pg_config's bindir or the newest Debian version."""
    found = shutil.which("pg_dump")
    if found:
        return found
    pg_config = shutil.which("pg_config")
    if pg_config:
        bindir = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        candidate = Path(bindir.stdout.strip()) / "pg_dump"
        if candidate.is_file():
            return str(candidate)
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_dump"), key=_major, reverse=True)
    if versions:
        return versions[0]
    raise BackupError("pg_dump not found (install the PostgreSQL client tools)")


def _major(path: str) -> int:
    version = Path(path).parts[-3]
    return int(version) if version.isdigit() else 0


def _libpq_env(settings_dict: dict) -> dict[str, str]:
    """Connection settings for libpq tools, passed in the environment, never in argv."""
    options = settings_dict.get("OPTIONS") or {}
    values = {
        "PGDATABASE": settings_dict.get("NAME"),
        "PGUSER": settings_dict.get("USER"),
        "PGPASSWORD": settings_dict.get("PASSWORD"),
        "PGHOST": settings_dict.get("HOST"),
        "PGPORT": settings_dict.get("PORT"),
        "PGSSLMODE": options.get("sslmode"),
    }
    return {k: str(v) for k, v in values.items() if v}
