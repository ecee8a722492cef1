"""Throwaway PostgreSQL clusters for the test suite and the benchmarks.

`initdb` refuses root, so as root the cluster runs as the `postgres` system user.
"""

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from apps.devstack.processes import free_port, spawn, stop_all


def postgres_bindir() -> Path | None:
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists():
            return candidate
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        bindir = Path(out.stdout.strip())
        if (bindir / "postgres").exists():
            return bindir
    return None


def _as_postgres_user(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


@contextlib.contextmanager
def postgres_cluster(database: str = "switchyard") -> Iterator[str]:
    """Start a fast (fsync off) cluster on a free loopback port; yield its URL."""
    bindir = postgres_bindir()
    if bindir is None:
        raise RuntimeError("no PostgreSQL binaries (initdb) found")
    root = Path(tempfile.mkdtemp(prefix="switchyard-pg-"))
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(root, user.pw_uid, user.pw_gid)
    data = root / "data"
    port = free_port()
    subprocess.run(
        _as_postgres_user([str(bindir / "initdb"), "-D", str(data), "-U", "postgres",
                           "--auth=trust", "-E", "UTF8", "--no-sync"]),
        check=True, capture_output=True,
    )  # fmt: skip
    server = spawn(
        _as_postgres_user([str(bindir / "postgres"), "-D", str(data), "-p", str(port),
                           "-k", str(root), "-c", "listen_addresses=127.0.0.1",
                           "-c", "fsync=off", "-c", "synchronous_commit=off",
                           "-c", "full_page_writes=off", "-c", "max_connections=200"]),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait_for_postgres(bindir, port)
        subprocess.run(
            [str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
             database], check=True,
        )  # fmt: skip
        yield f"postgres://postgres@127.0.0.1:{port}/{database}"
    finally:
        stop_all([server])
        shutil.rmtree(root, ignore_errors=True)


def _wait_for_postgres(bindir: Path, port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready = subprocess.run(
            [str(bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)],
            capture_output=True,
        )
        if ready.returncode == 0:
            return
        time.sleep(0.1)
    raise RuntimeError(f"PostgreSQL did not start on port {port}")
