"""A reused PostgreSQL connection is checked without a round trip when the server has
said nothing, and one the server ended is replaced before a request uses it
(project/postgresql)."""

import http.client
import json
import secrets
from pathlib import Path

import psycopg
import pytest
from django.db import close_old_connections, connection
from django.db.backends.postgresql import base

from apps.api.models import ApiToken
from apps.devstack import processes
from tests.conftest import test_database_url
from tests.helpers import make_user, wait_for

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="PostgreSQL connections (SQLite has no server)"
)

WEB_NAME = "health-check-web"


def backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def on_the_side(sql: str, *params) -> list[tuple]:
    """A statement on a connection of its own (not Django's)."""
    with psycopg.connect(test_database_url(), autocommit=True) as side:
        return side.execute(sql, params).fetchall()


def terminate(where: str, *params) -> None:
    """End the matching sessions from the server's side; return once they are gone."""
    ended = on_the_side(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE {where}",
                        *params)  # fmt: skip
    assert ended and all(row[0] for row in ended)
    wait_for(lambda: not on_the_side(f"SELECT 1 FROM pg_stat_activity WHERE {where}", *params))


@pytest.fixture
def select_1_asked(monkeypatch) -> list:
    """Django's own check (a `SELECT 1` round trip) records each time it is asked."""
    asked, django_check = [], base.DatabaseWrapper.is_usable

    def recorded(wrapper):
        asked.append(wrapper.alias)
        return django_check(wrapper)

    monkeypatch.setattr(base.DatabaseWrapper, "is_usable", recorded)
    return asked


@pytest.mark.django_db(transaction=True)
def test_an_idle_connection_the_server_said_nothing_on_is_reused_without_a_round_trip(
    select_1_asked,
):
    pid = backend_pid()

    close_old_connections()  # what every request and every task starts with
    assert backend_pid() == pid

    assert connection.health_check_done
    assert select_1_asked == []


@pytest.mark.django_db(transaction=True)
def test_a_connection_the_server_ended_is_replaced_before_the_next_query(select_1_asked):
    pid = backend_pid()
    terminate("pid = %s", pid)

    close_old_connections()
    assert backend_pid() != pid

    assert select_1_asked == ["default"]  # the socket had something to say: ask, as Django does


@pytest.mark.django_db(transaction=True)
def test_the_api_answers_every_call_after_postgresql_ended_the_web_servers_sessions(
    start_process,
):
    user = make_user("scripter", staff=False, is_superuser=True)
    token = ApiToken.issue(user, "health check")[1]
    port = processes.free_port()
    server = start_process(
        processes.gunicorn_command(f"127.0.0.1:{port}"),
        DATABASE_URL=f"{test_database_url()}?application_name={WEB_NAME}",
        SECRET_KEY=secrets.token_urlsafe(50), DEBUG="false", ALLOWED_HOSTS="127.0.0.1",
        SECURE_SSL_REDIRECT="false", SECURE_COOKIES="false",
    )  # fmt: skip
    api = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    body = json.dumps({"parameters": {"x": 1, "y": 2}})

    def start_run() -> int:
        assert server.poll() is None, Path(server.log_path).read_text(errors="replace")[-3000:]
        try:
            api.request("POST", "/api/jobs/apps.demo.tasks.add/runs", body, headers)
            response = api.getresponse()
            response.read()
            return response.status
        except (OSError, http.client.HTTPException):
            api.close()
            return 0

    wait_for(lambda: start_run() == 201, timeout=120)
    statuses = [start_run() for _ in range(8)]  # gthread's 4 threads, each its connection
    terminate("application_name = %s", WEB_NAME)
    statuses += [start_run() for _ in range(8)]

    assert statuses == [201] * 16
    assert on_the_side("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                       WEB_NAME)[0][0] > 0  # fmt: skip
