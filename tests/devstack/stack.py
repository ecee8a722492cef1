"""Helpers for tests that start a whole devstack (`manage.py devstack` or `make run`):
start it, watch every process it starts, use it over HTTP, stop it, find leftovers."""

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


def children_of(pid: int, command_part: str) -> list[int]:
    """Live direct children of `pid` whose command line contains `command_part`."""
    return [
        child
        for child in _pids()
        if (stat := _stat(child)) and stat[1] == pid and stat[0] not in "ZX"
        and command_part in _cmdline(child)
    ]  # fmt: skip


def start_stack(command: list[str], env: dict[str, str], address: str, log_path: Path,
                cwd: Path | None = None) -> subprocess.Popen:  # fmt: skip
    """Start a devstack in its own session; `.url`, `.tree` and `.output()` describe it."""
    log = open(log_path, "wb")  # noqa: SIM115  (the child writes to it; closed by stop_stack)
    stack = processes.spawn(command, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
    stack.log = log
    stack.url = f"http://{address}"
    stack.tree = ProcessTree(stack.pid)
    stack.output = lambda: log_path.read_text(errors="replace")[-6000:]
    return stack


def kill_stack(stack: subprocess.Popen) -> None:
    """After a test: kill whatever is left of the stack, whatever state the test left."""
    stack.tree.collect()
    processes.stop_all([stack], timeout=5)
    stack.tree.kill()
    stack.log.close()


def wait_until_it_answers(stack, path: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stack.tree.collect()
        assert stack.poll() is None, f"devstack exited early:\n{stack.output()}"
        try:
            with urllib.request.urlopen(stack.url + path, timeout=5) as response:
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


def run_add_through_the_stack(env: dict[str, str], cwd: Path | None = None) -> str:
    """`add(4, 5)` sent from a second process, as a user's second terminal would."""
    code = "from apps.demo.tasks import add; print(add.delay(4, 5).get(timeout=60))"
    done = subprocess.run(
        [processes.PYTHON, "manage.py", "shell", "-c", code],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout.strip().splitlines()[-1]


def stop_and_assert_nothing_is_left(stack, timeout: float = 60.0) -> None:
    """SIGTERM the stack's process group (Ctrl-C in a terminal sends the group SIGINT);
    wait for it to end and for every process it ever started to be gone."""
    stack.tree.collect()
    os.killpg(stack.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while stack.poll() is None and time.monotonic() < deadline:
        stack.tree.collect()
        time.sleep(0.05)
    assert stack.poll() is not None, f"still running {timeout}s after SIGTERM:\n{stack.output()}"
    # SIGKILLed processes take a moment to finish dying; a leftover never does.
    deadline = time.monotonic() + 10
    while stack.tree.alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stack.tree.alive() == []
    assert "Stopped." in stack.output()
