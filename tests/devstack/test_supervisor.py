"""The devstack supervisor: a process that exits comes back after a back-off, with a line
saying so; Ctrl-C / SIGTERM still stops every process."""

import os
import re
import signal
import textwrap
import time
from pathlib import Path

import pytest

from apps.devstack import processes
from apps.devstack.management.commands.devstack import Command
from apps.devstack.supervisor import HEALTHY_AFTER, Child, next_delay, stop_children, watch
from tests.devstack.stack import (
    children_of,
    run_add_through_the_stack,
    stop_and_assert_nothing_is_left,
    wait_until_it_answers,
)
from tests.helpers import wait_for

pytestmark = pytest.mark.once  # no database of the suite's: devstack brings its own

WORKER = "celery -A project worker"
BEAT = "celery -A project beat"


def test_the_delay_starts_at_one_second_doubles_up_to_thirty_and_starts_over_after_a_healthy_run():
    delays, delay = [], None
    for _ in range(7):
        delay = next_delay(delay, uptime=0.5)
        delays.append(delay)

    assert delays == [1, 2, 4, 8, 16, 30, 30]
    assert next_delay(30, uptime=HEALTHY_AFTER - 1) == 30
    assert next_delay(30, uptime=HEALTHY_AFTER) == 1


def test_a_child_that_fails_at_once_is_started_again_after_growing_delays_with_a_line_each_time():
    said: list[tuple[float, str]] = []
    child = Child("flaky", [processes.PYTHON, "-c", "raise SystemExit(3)"],
                  lambda line: said.append((time.monotonic(), line)))  # fmt: skip
    deadline = time.monotonic() + 90

    def stopping() -> bool:
        return len(lines_with("started again", said)) >= 2 or time.monotonic() > deadline

    child.start()
    try:
        watch([child], stopping)
    finally:
        stop_children([child])

    exits, starts = lines_with("exited", said), lines_with("started again", said)
    assert len(starts) == 2, said
    pattern = (r"flaky \(pid \d+\) exited with status 3 after [\d.]+ s; "
               r"starting it again in {} s \(at \d\d:\d\d:\d\d\)\.")  # fmt: skip
    assert re.fullmatch(pattern.format(1), exits[0][1]), exits[0][1]
    assert re.fullmatch(pattern.format(2), exits[1][1]), exits[1][1]
    # Lower bounds only: a busy machine makes the gaps longer, never shorter.
    assert starts[0][0] - exits[0][0] >= 1.0
    assert starts[1][0] - exits[1][0] >= 2.0


# Stands in for one of the stack's processes: says when it is up, when SIGTERM came, and
# when it exited, after a warm shutdown that takes a moment.
STAND_IN = textwrap.dedent("""
    import signal, sys, time
    log, name = sys.argv[1], sys.argv[2]

    def say(line):
        with open(log, "a") as file:
            file.write(f"{name} {line}\\n")

    def stop(*_):
        say("got SIGTERM")
        time.sleep(0.5)
        say("exited")
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    say("ready")
    while True:
        time.sleep(1)
""")


def test_stopping_the_stack_stops_redis_only_after_the_worker_beat_and_web_have_exited(
    settings, tmp_path
):
    """Redis and the worker got SIGTERM at once: the worker logged "broker unreachable ...
    dropping N bytes it never acknowledged"."""
    settings.EMBEDDED_REDIS, settings.EMBEDDED_REDIS_DIR = True, tmp_path / "redis"
    log = tmp_path / "stack.log"
    children = Command().children("127.0.0.1:8000", 2)
    for child in children:
        child.command = [processes.PYTHON, "-c", STAND_IN, str(log), child.name]
        child.start()
    names = [child.name for child in children]
    try:
        assert names == ["redis", "worker", "beat", "web"]
        wait_for(lambda: said(log).count("ready") == 4, timeout=30)
    finally:
        stop_children(children)

    lines = Path(log).read_text().splitlines()
    redis_stops = lines.index("redis got SIGTERM")
    assert all(lines.index(f"{name} exited") < redis_stops for name in names[1:]), lines
    assert lines[-1] == "redis exited"


def said(log: Path) -> list[str]:
    return [line.split()[-1] for line in log.read_text().splitlines()] if log.exists() else []


def lines_with(text: str, said: list[tuple[float, str]]) -> list[tuple[float, str]]:
    return [(when, line) for when, line in said if text in line]


def the_one(pid: int, command_part: str) -> int:
    (child,) = wait_for(lambda: children_of(pid, command_part), timeout=60)
    return child


def a_new_one(stack, command_part: str, old: int) -> int:
    def new_ones() -> list[int]:
        assert stack.poll() is None, f"devstack exited:\n{stack.output()}"
        stack.tree.collect()
        return [pid for pid in children_of(stack.pid, command_part) if pid != old]

    return wait_for(new_ones, timeout=90)[0]


@pytest.mark.slow
def test_a_killed_worker_and_beat_come_back_and_the_stack_still_runs_jobs(devstack, stack_env):
    wait_until_it_answers(devstack, "/admin/login/")
    worker, beat = the_one(devstack.pid, WORKER), the_one(devstack.pid, BEAT)
    wait_for(lambda: len(children_of(worker, WORKER)) >= 2, timeout=60)  # its pool
    devstack.tree.collect()

    os.kill(worker, signal.SIGKILL)
    os.kill(beat, signal.SIGKILL)

    new_worker = a_new_one(devstack, WORKER, worker)
    new_beat = a_new_one(devstack, BEAT, beat)
    output = devstack.output()
    assert f"worker (pid {worker}) was killed by SIGKILL" in output
    assert f"beat (pid {beat}) was killed by SIGKILL" in output
    assert f"worker started again (pid {new_worker})" in output
    assert f"beat started again (pid {new_beat})" in output
    assert run_add_through_the_stack(stack_env) == "9"
    wait_until_it_answers(devstack, "/admin/login/")

    stop_and_assert_nothing_is_left(devstack)  # the killed worker's pool processes too
    assert devstack.returncode == 0, devstack.output()
