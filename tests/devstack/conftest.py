import os

import pytest

from apps.devstack import processes
from tests.devstack.stack import ADMIN_PASSWORD, ADMIN_USER, kill_stack, start_stack


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
    command = [processes.PYTHON, "manage.py", "devstack", "--address", address]
    stack = start_stack(command, stack_env, address, tmp_path / "devstack.log")
    yield stack
    kill_stack(stack)
