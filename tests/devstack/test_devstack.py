"""`manage.py devstack` end to end: embedded Redis, worker, beat and web, then a clean stop."""

import contextlib
import http.cookiejar
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from apps.devstack import processes

ADMIN_USER = "ops-admin"
ADMIN_PASSWORD = "correct-horse-battery-staple"


class ProcessTree:
    """Every descendant of one process seen so far, keyed by pid and start time.

    Children of devstack run in their own sessions, so they are found through
    /proc/<pid>/stat's parent pid, not through the process group. The start time
    tells a leftover apart from an unrelated process that reused its pid.
    """

    def __init__(self, root: int) -> None:
        self.root = root
        self.seen: dict[int, tuple[str, str]] = {}  # pid -> (start time, command line)

    def collect(self) -> None:
        table = {pid: stat for pid in _pids() if (stat := _stat(pid))}
        parents = {self.root}
        while True:
            found = {pid for pid, st in table.items() if st[1] in parents} - parents
            if not found:
                return
            for pid in found:
                self.seen.setdefault(pid, (table[pid][2], _cmdline(pid)))
            parents |= found

    def alive(self) -> list[str]:
        return [
            f"{pid} {cmdline}"
            for pid, (started, cmdline) in self.seen.items()
            if (stat := _stat(pid)) and stat[2] == started and stat[0] not in "ZX"
        ]

    def kill(self) -> None:
        for pid, (started, _) in self.seen.items():
            stat = _stat(pid)
            if stat and stat[2] == started:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _stat(pid: int) -> tuple[str, int, str] | None:
    """(state, parent pid, start time) of a process, or None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw.rsplit(")", 1)[1].split()  # the command name may hold spaces
    return fields[0], int(fields[1]), fields[19]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return "?"


@pytest.fixture
def stack_env(tmp_path) -> dict[str, str]:
    """devstack's environment: its own Redis port and folder, and its own SQLite file."""
    env = {key: value for key, value in os.environ.items() if key != "CELERY_BROKER_URL"}
    return {
        **env,
        "EMBEDDED_REDIS_DIR": str(tmp_path / "redis"),
        "EMBEDDED_REDIS_PORT": str(processes.free_port()),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'stack.sqlite3'}",
        "ADMIN_USER": ADMIN_USER,
        "ADMIN_PASSWORD": ADMIN_PASSWORD,
        "DEBUG": "true",
        "PYTHONUNBUFFERED": "1",
    }


@pytest.fixture
def devstack(stack_env, tmp_path):
    """A running `manage.py devstack`; whatever is left of it is killed afterwards."""
    address = f"127.0.0.1:{processes.free_port()}"
    log = open(tmp_path / "devstack.log", "wb")  # noqa: SIM115
    stack = processes.spawn(
        [processes.PYTHON, "manage.py", "devstack", "--address", address],
        env=stack_env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    stack.url = f"http://{address}"
    stack.tree = ProcessTree(stack.pid)
    stack.output = lambda: (tmp_path / "devstack.log").read_text(errors="replace")[-4000:]
    yield stack
    stack.tree.collect()
    processes.stop_all([stack], timeout=5)
    stack.tree.kill()
    log.close()


def wait_until_it_answers(stack, path: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stack.tree.collect()
        assert stack.poll() is None, f"devstack exited early:\n{stack.output()}"
        try:
            with urllib.request.urlopen(stack.url + path, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.25)
    raise AssertionError(f"{stack.url}{path} did not answer in {timeout}s:\n{stack.output()}")


def log_in_to_admin(base_url: str, username: str, password: str) -> tuple[str, str]:
    """Log in through the real login form; return the final URL and page."""
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    with opener.open(f"{base_url}/admin/login/?next=/admin/", timeout=10) as response:
        form = response.read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)
    fields = {"csrfmiddlewaretoken": token, "username": username, "password": password,
              "next": "/admin/"}  # fmt: skip
    body = urllib.parse.urlencode(fields).encode()
    with opener.open(f"{base_url}/admin/login/?next=/admin/", body, timeout=10) as response:
        return response.url, response.read().decode()


def run_add_through_the_stack(env: dict[str, str]) -> str:
    code = "from apps.demo.tasks import add; print(add.delay(4, 5).get(timeout=20))"
    done = subprocess.run(
        [processes.PYTHON, "manage.py", "shell", "-c", code],
        env=env, capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout.strip().splitlines()[-1]


@pytest.mark.slow
def test_devstack_serves_the_admin_runs_a_job_and_stops_without_leftovers(devstack, stack_env):
    wait_until_it_answers(devstack, "/admin/login/")

    final_url, page = log_in_to_admin(devstack.url, ADMIN_USER, ADMIN_PASSWORD)
    assert final_url == f"{devstack.url}/admin/"
    assert "Site administration" in page
    assert f"<strong>{ADMIN_USER}</strong>" in page

    assert run_add_through_the_stack(stack_env) == "9"

    devstack.tree.collect()
    commands = " | ".join(cmdline for _, cmdline in devstack.tree.seen.values())
    for part in ("redis-server", "celery -A project worker", "celery -A project beat",
                 "manage.py runserver"):  # fmt: skip
        assert part in commands, f"{part!r} not among devstack's descendants: {commands}"
    workers = [c for _, c in devstack.tree.seen.values() if "celery -A project worker" in c]
    assert len(workers) >= 3, "the worker and its two pool processes"

    devstack.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 30
    while devstack.poll() is None and time.monotonic() < deadline:
        devstack.tree.collect()
        time.sleep(0.05)
    assert devstack.poll() == 0, devstack.output()
    assert "Stopped." in devstack.output()
    # SIGKILLed processes take a moment to finish dying; a leftover never does.
    deadline = time.monotonic() + 5
    while devstack.tree.alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert devstack.tree.alive() == []
