"""The serving entry points (project.wsgi, project.asgi, gunicorn) refuse to start in
production with the public development SECRET_KEY; manage.py commands still run."""

import subprocess
import sys
import urllib.error
import urllib.request
from http.client import HTTPConnection

import pytest

from apps.devstack import processes
from tests.deploy.test_settings import ROOT, manage, production_env
from tests.helpers import wait_for

pytestmark = pytest.mark.once  # each process has a throwaway SQLite database of its own

REFUSAL = "SECRET_KEY is not set"


def import_module(tmp_path, module: str, **env: str | None) -> subprocess.CompletedProcess:
    code = f"import {module}; print('{module} loaded')"
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=production_env(tmp_path, **env),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.mark.parametrize("module", ["project.wsgi", "project.asgi"])
@pytest.mark.parametrize("debug", [None, "false"])
def test_the_application_refuses_to_load_in_production_without_a_secret_key(
    tmp_path, module, debug
):
    result = import_module(tmp_path, module, SECRET_KEY=None, DEBUG=debug)

    assert result.returncode != 0
    assert f"ImproperlyConfigured: {REFUSAL}" in result.stderr
    assert f"{module} loaded" not in result.stdout


@pytest.mark.parametrize("module", ["project.wsgi", "project.asgi"])
def test_the_application_loads_with_a_secret_key(tmp_path, module):
    result = import_module(tmp_path, module)

    assert result.returncode == 0, result.stderr
    assert f"{module} loaded" in result.stdout


def test_the_application_loads_without_a_secret_key_when_debug_is_on(tmp_path):
    result = import_module(tmp_path, "project.wsgi", SECRET_KEY=None, DEBUG="true")

    assert result.returncode == 0, result.stderr


def test_manage_py_commands_run_without_a_secret_key(tmp_path):
    result = manage(tmp_path, "check", SECRET_KEY=None)

    assert result.returncode == 0, result.stderr


def gunicorn(tmp_path, **env: str | None) -> subprocess.Popen:
    """gunicorn as docker-compose.yml's web service runs it, on a free loopback port."""
    port = processes.free_port()
    command = processes.gunicorn_command(f"127.0.0.1:{port}", "--workers", "1")
    log_path = tmp_path / "gunicorn.log"
    with open(log_path, "wb") as log:
        server = processes.spawn(
            command, env=production_env(tmp_path, ALLOWED_HOSTS="127.0.0.1", **env),
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    server.url = f"http://127.0.0.1:{port}"
    server.output = lambda: log_path.read_text(errors="replace")[-4000:]
    return server


def answers(server, path: str) -> bool:
    assert server.poll() is None, f"gunicorn exited:\n{server.output()}"
    try:
        with urllib.request.urlopen(server.url + path, timeout=5) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


@pytest.mark.slow
def test_gunicorn_exits_at_start_in_production_without_a_secret_key(tmp_path):
    server = gunicorn(tmp_path, SECRET_KEY=None)
    try:
        server.wait(timeout=120)
    finally:
        processes.stop_all([server])

    assert server.returncode != 0
    assert REFUSAL in server.output()


@pytest.mark.slow
def test_gunicorn_serves_in_production_with_a_secret_key_keeping_connections_alive(tmp_path):
    server = gunicorn(tmp_path)
    try:
        wait_for(lambda: answers(server, "/healthz"), timeout=120)
        statuses, connection = [], HTTPConnection(server.url.removeprefix("http://"), timeout=5)
        try:
            for _ in range(3):  # one connection: a sync worker closes it after each answer
                connection.request("GET", "/healthz")
                response = connection.getresponse()
                response.read()
                statuses.append((response.status, response.getheader("Connection")))
        finally:
            connection.close()
    finally:
        processes.stop_all([server])
    assert statuses == [(200, "keep-alive")] * 3
