"""A newcomer's first `make run`: a clean clone of the committed HEAD, nothing else.

Every other test runs in a checkout that already has var/ (the database, Redis's data);
this one starts from what `git clone` gives. Only the virtualenv is reused: building one
takes minutes and needs the package index.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from apps.devstack import processes
from tests.deploy.test_settings import settings_variables
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

ROOT = Path(__file__).resolve().parents[2]
# The virtualenv running the tests (not resolved: .venv may be a link to a shared one).
VENV = Path(sys.executable).parent.parent
# Set by pytest-django, the browser tests or an outer `make`; a newcomer's shell has none.
NOT_IN_A_NEWCOMERS_SHELL = {"DJANGO_SETTINGS_MODULE", "DJANGO_ALLOW_ASYNC_UNSAFE",
                            "MAKEFLAGS", "MAKELEVEL", "MFLAGS"}  # fmt: skip

pytestmark = [pytest.mark.slow, pytest.mark.once]


def git(*args: str, cwd: Path = ROOT) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def clone_head(target: Path) -> Path:
    """`git clone` of this checkout, at its committed HEAD (uncommitted changes stay out)."""
    if not (ROOT / ".git").exists():
        pytest.skip("the tests do not run from a git checkout")
    head = git("rev-parse", "HEAD")
    git("clone", "--quiet", "--no-checkout", str(ROOT), str(target))
    git("checkout", "--quiet", "--detach", head, cwd=target)
    return target


def newcomer_env() -> dict[str, str]:
    """No Switchyard variable set, except the admin account and a Redis port of its own
    (6388 may be taken by another stack on this machine)."""
    unset = settings_variables() | NOT_IN_A_NEWCOMERS_SHELL
    env = {key: value for key, value in os.environ.items() if key not in unset}
    return {
        **env,
        "EMBEDDED_REDIS_PORT": str(processes.free_port()),
        "ADMIN_USER": ADMIN_USER,
        "ADMIN_PASSWORD": ADMIN_PASSWORD,
        "PYTHONUNBUFFERED": "1",
    }


@pytest.fixture
def clone(tmp_path) -> Path:
    return clone_head(tmp_path / "switchyard")


@pytest.fixture
def make_run(clone, tmp_path):
    """`make run` in the clone, on a free port, with the tests' virtualenv taken as built."""
    env = newcomer_env()
    address = f"127.0.0.1:{processes.free_port()}"
    command = ["make", "--no-print-directory", "-o", f"{VENV}/.installed", "run",
               f"VENV={VENV}", f"ADDRESS={address}"]  # fmt: skip
    assert not (clone / "var").exists()
    stack = start_stack(command, env, address, tmp_path / "make-run.log", cwd=clone)
    stack.env = env
    yield stack
    kill_stack(stack)


def test_make_run_in_a_fresh_clone_serves_logs_in_runs_a_job_and_stops_clean(make_run, clone):
    wait_until_it_answers(make_run, "/admin/login/", timeout=180)

    final_url, page = log_in_to_admin(make_run.url, ADMIN_USER, ADMIN_PASSWORD)
    assert final_url == f"{make_run.url}/admin/"
    assert f"<strong>{ADMIN_USER}</strong>" in page

    assert run_add_through_the_stack(make_run.env, cwd=clone) == "9"
    assert (clone / "var" / "switchyard.sqlite3").is_file()  # the clone's own database

    stop_and_assert_nothing_is_left(make_run)
    assert git("status", "--porcelain", cwd=clone) == ""  # var/ is ignored, nothing else
