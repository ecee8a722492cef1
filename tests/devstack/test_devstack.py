"""`manage.py devstack` end to end: embedded Redis, worker, beat and web, then a clean stop."""

import contextlib
import socket
from collections.abc import Iterator

import pytest

from apps.devstack import processes
from tests.devstack.stack import (
    ADMIN_PASSWORD,
    ADMIN_USER,
    kill_stack,
    log_in_to_admin,
    run_add_through_the_stack,
    start_stack,
    stop_and_assert_nothing_is_left,
    wait_until_it_answers,
)
from tests.helpers import wait_for


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

    stop_and_assert_nothing_is_left(devstack)
    assert devstack.returncode == 0, devstack.output()


def start_devstack_beside(env: dict[str, str], address: str, tmp_path) -> tuple[int, str]:
    """Its exit status and output; whatever it started is killed, even if it never ends."""
    command = [processes.PYTHON, "manage.py", "devstack", "--address", address]
    stack = start_stack(command, env, address, tmp_path / "devstack.log")
    try:
        wait_for(lambda: stack.tree.collect() or stack.poll() is not None, timeout=120)
    finally:
        kill_stack(stack)
    return stack.returncode, stack.output()


@pytest.mark.once
def test_devstack_refuses_to_start_when_its_web_address_is_taken(stack_env, tmp_path):
    with listening_socket() as port:
        status, output = start_devstack_beside(stack_env, f"127.0.0.1:{port}", tmp_path)

    assert status == 1
    assert f"127.0.0.1:{port} is already in use" in output
    assert "make run ADDRESS=" in output
    assert "Switchyard is up" not in output


@pytest.mark.once
def test_devstack_refuses_to_start_when_the_embedded_redis_port_is_taken(stack_env, tmp_path):
    with listening_socket() as port:
        env = {**stack_env, "EMBEDDED_REDIS_PORT": str(port)}
        status, output = start_devstack_beside(env, f"127.0.0.1:{processes.free_port()}", tmp_path)

    assert status == 1
    assert f"127.0.0.1:{port}, the embedded Redis's port, is already in use" in output
    assert "EMBEDDED_REDIS_PORT=" in output
    assert "Switchyard is up" not in output


@contextlib.contextmanager
def listening_socket() -> Iterator[int]:
    """Something else listening on a loopback port, as another stack's server would."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield other.getsockname()[1]
