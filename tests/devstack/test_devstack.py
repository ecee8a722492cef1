"""`manage.py devstack` end to end: embedded Redis, worker, beat and web, then a clean stop."""

import pytest

from tests.devstack.stack import (
    ADMIN_PASSWORD,
    ADMIN_USER,
    log_in_to_admin,
    run_add_through_the_stack,
    stop_and_assert_nothing_is_left,
    wait_until_it_answers,
)


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
