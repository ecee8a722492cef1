"""Database backups: a consistent copy, restored into a fresh database, data identical.

The round trip runs on whichever database the suite uses (SQLite, then PostgreSQL).
"""

import datetime as dt
import shutil
import sqlite3
import subprocess
import threading
import uuid
from pathlib import Path

import pytest
from django.db import connection, connections

from apps.maintenance import backup
from tests.helpers import make_run, make_user

pytestmark = pytest.mark.django_db(transaction=True)

COMPARED_TABLES = ("auth_user", "jobs_run", "django_migrations")


def make_some_data() -> None:
    alice = make_user("alice")
    for n in range(25):
        make_run(parameters={"x": n, "note": 'ünïcode, "quotes"'}, requested_by=alice)


def test_backup_restores_to_identical_data(tmp_path):
    make_some_data()
    result = backup.backup_database(keep=7, folder=tmp_path)
    path = tmp_path / result["file"]
    assert backup.NAME_PATTERN.match(path.name)
    assert result["bytes"] == path.stat().st_size > 0
    restore = restore_sqlite if connection.vendor == "sqlite" else restore_postgresql
    with restore(path, tmp_path) as (read_live, read_restored):
        for table in COMPARED_TABLES:
            assert read_restored(table) == read_live(table), table
        assert len(read_restored("jobs_run")) == 25


def test_backup_name_is_the_utc_time_with_the_format_extension(tmp_path):
    now = dt.datetime(2026, 11, 27, 18, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    result = backup.backup_database(folder=tmp_path, now=now)
    extension = "sqlite3" if connection.vendor == "sqlite" else "dump"
    assert result["file"] == f"switchyard-20261127T170000Z.{extension}"


def test_two_backups_in_the_same_second_do_not_overwrite_each_other(tmp_path):
    now = dt.datetime(2026, 11, 27, 17, 0, tzinfo=dt.UTC)
    first = backup.backup_database(folder=tmp_path, now=now)["file"]
    second = backup.backup_database(folder=tmp_path, now=now)["file"]
    assert first != second
    assert {b.name for b in backup.list_backups(tmp_path)} == {first, second}


def test_backups_beyond_keep_are_removed_oldest_first(tmp_path):
    days = [dt.datetime(2026, 1, day, tzinfo=dt.UTC) for day in (1, 2, 3, 4)]
    names = [backup.backup_database(keep=2, folder=tmp_path, now=day)["file"] for day in days]
    assert [b.name for b in backup.list_backups(tmp_path)] == [names[3], names[2]]


def test_no_partial_file_is_left_when_the_copy_fails(tmp_path, monkeypatch):
    def broken_copy(settings_dict, target: Path):
        target.write_bytes(b"half a backup")
        raise backup.BackupError("disk full")

    monkeypatch.setattr(backup, "_copy_sqlite", broken_copy)
    monkeypatch.setattr(backup, "_dump_postgresql", broken_copy)
    with pytest.raises(backup.BackupError):
        backup.backup_database(folder=tmp_path)
    assert list(tmp_path.iterdir()) == []


# Restoring, then reading the live and the restored database the same way ------------
# Each context manager yields (read_live, read_restored): table name -> sorted rows.


def select_all(table: str) -> str:
    return f"SELECT * FROM {table} ORDER BY 1"


class restore_sqlite:
    """docs/backup.md: copy the file into place; here, next to the test database."""

    def __init__(self, path: Path, tmp_path: Path):
        self.restored = tmp_path / "restored.sqlite3"
        shutil.copyfile(path, self.restored)

    def __enter__(self):
        self.live = sqlite3.connect(connection.settings_dict["NAME"])
        self.db = sqlite3.connect(self.restored)
        return self.reader(self.live), self.reader(self.db)

    @staticmethod
    def reader(db: sqlite3.Connection):
        return lambda table: db.execute(select_all(table)).fetchall()

    def __exit__(self, *exc):
        self.live.close()
        self.db.close()


class restore_postgresql:
    """docs/backup.md: createdb, then pg_restore --clean --if-exists --no-owner -d NAME."""

    def __init__(self, path: Path, tmp_path: Path):
        self.name = f"restored_{uuid.uuid4().hex[:8]}"
        self.settings = dict(connection.settings_dict)
        env = backup._libpq_env(self.settings)
        bindir = Path(backup.pg_dump_path()).parent
        subprocess.run([bindir / "createdb", self.name], env=env, check=True)
        restored = subprocess.run(
            [bindir / "pg_restore", "--clean", "--if-exists", "--no-owner", "-d", self.name,
             str(path)], env=env, capture_output=True, text=True,
        )  # fmt: skip
        assert restored.returncode == 0, restored.stderr

    def __enter__(self):
        self.live = self.connect(self.settings["NAME"])
        self.db = self.connect(self.name)
        return self.reader(self.live), self.reader(self.db)

    def connect(self, dbname: str):
        import psycopg

        s = self.settings
        return psycopg.connect(
            dbname=dbname, user=s["USER"], password=s["PASSWORD"] or None,
            host=s["HOST"], port=s["PORT"], autocommit=True,
        )  # fmt: skip

    @staticmethod
    def reader(db):
        return lambda table: db.execute(select_all(table)).fetchall()

    def __exit__(self, *exc):
        self.live.close()
        self.db.close()
        env = backup._libpq_env(self.settings)
        bindir = Path(backup.pg_dump_path()).parent
        subprocess.run([bindir / "dropdb", "--if-exists", self.name], env=env, check=False)


def test_a_backup_taken_while_runs_are_written_restores_whole(tmp_path):
    make_some_data()
    stop = threading.Event()

    def keep_writing():
        while not stop.is_set():
            make_run()
        connections.close_all()

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        result = backup.backup_database(folder=tmp_path)
    finally:
        stop.set()
        writer.join()
    restore = restore_sqlite if connection.vendor == "sqlite" else restore_postgresql
    with restore(tmp_path / result["file"], tmp_path) as (read_live, read_restored):
        restored, live = read_restored("jobs_run"), read_live("jobs_run")
    assert 25 <= len(restored) <= len(live)
    assert restored == live[: len(restored)]
