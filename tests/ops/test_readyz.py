"""/healthz says the process is alive; /readyz names each dependency and its state."""

import time
from datetime import timedelta

import pytest
from django.db import OperationalError, connection
from django.utils import timezone

from apps.devstack import processes
from apps.ops import heartbeat
from apps.ops.models import Heartbeat
from tests.helpers import make_superuser, make_user, point_celery_at
from tests.ops.makers import given_snapshot

TOKEN = "readyz-test-token"


@pytest.fixture
def staff(client):
    """Staff see each check's detail; anyone else the status alone."""
    client.force_login(make_user("sam"))
    return client


@pytest.fixture
def token_client(client, settings):
    """The metrics token shows the details without a session (no database needed)."""
    settings.METRICS_TOKEN = TOKEN
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {TOKEN}"
    return client


def readyz_with_the_database_down(client, monkeypatch, error: str = "connection refused"):
    """GET /readyz while every connection attempt to the database is refused (a worker
    snapshot cached, so only the database check fails)."""
    from .makers import given_snapshot

    given_snapshot("w1@host")

    def refuse(*args, **kwargs):
        raise OperationalError(error)

    connection.close()
    monkeypatch.setattr(connection, "ensure_connection", refuse)
    response = client.get("/readyz")
    monkeypatch.undo()
    return response


def test_healthz_answers_without_the_database(client, django_db_blocker):
    with django_db_blocker.block():
        response = client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def checks(response) -> dict[str, bool]:
    return {name: check["ok"] for name, check in response.json()["checks"].items()}


@pytest.mark.django_db(transaction=True)
def test_readyz_is_200_when_database_broker_worker_and_beat_all_answer(staff, celery_worker):
    heartbeat.record("beat")
    response = staff.get("/readyz")
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "ok"
    assert checks(response) == {"database": True, "broker": True, "workers": True, "beat": True}


@pytest.mark.django_db(transaction=True)
def test_readyz_is_503_when_beats_heartbeat_is_stale(staff, celery_worker, settings):
    settings.BEAT_HEARTBEAT_MAX_AGE = 60
    heartbeat.record("beat")
    Heartbeat.objects.filter(name="beat").update(seen_at=timezone.now() - timedelta(minutes=2))
    response = staff.get("/readyz")
    assert response.status_code == 503
    assert checks(response) == {"database": True, "broker": True, "workers": True, "beat": False}
    assert response.json()["checks"]["beat"]["detail"].startswith("last heartbeat 12")


@pytest.mark.django_db
def test_readyz_is_503_when_beat_never_reported(staff):
    response = staff.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["beat"]["detail"] == "no heartbeat recorded yet"


@pytest.mark.django_db
def test_readyz_is_503_when_the_broker_is_unreachable(staff, redis_url):
    heartbeat.record("beat")
    point_celery_at(f"redis://127.0.0.1:{processes.free_port()}/0")
    try:
        response = staff.get("/readyz")
    finally:
        point_celery_at(redis_url)
    assert response.status_code == 503
    assert checks(response) == {"database": True, "broker": False, "workers": False,
                                "beat": True}  # fmt: skip
    assert response.json()["checks"]["broker"]["detail"].startswith("unreachable")


def readyz_where_no_worker_listens(client, redis_url: str):
    heartbeat.record("beat")
    point_celery_at(redis_url.rsplit("/", 1)[0] + "/7")  # a database no worker listens on
    try:
        return client.get("/readyz")
    finally:
        point_celery_at(redis_url)


@pytest.mark.django_db
def test_readyz_is_503_when_no_worker_answers(staff, redis_url):
    response = readyz_where_no_worker_listens(staff, redis_url)
    assert response.status_code == 503
    assert checks(response)["workers"] is False
    assert response.json()["checks"]["workers"]["detail"] == "no worker answered"


@pytest.mark.django_db
def test_readyz_asks_again_when_the_kept_snapshot_is_past_its_cache_time(staff, redis_url):
    from apps.jobs import inspect, revalidating

    old = given_snapshot("gone@host")  # answered 6 s ago; the dashboard may still show it
    revalidating.store(inspect.CACHE_KEY, old, 60, stored_at=time.time() - 6)
    response = readyz_where_no_worker_listens(staff, redis_url)
    assert response.status_code == 503
    assert response.json()["checks"]["workers"]["detail"] == "no worker answered"


@pytest.mark.django_db
def test_readyz_is_503_when_the_database_is_unreachable(token_client, monkeypatch):
    response = readyz_with_the_database_down(token_client, monkeypatch)
    assert response.status_code == 503
    assert checks(response) == {"database": False, "broker": True, "workers": True,
                                "beat": False}  # fmt: skip
    assert response.json()["checks"]["database"]["detail"] == "unreachable: connection refused"


@pytest.mark.django_db
def test_readyz_stops_waiting_at_the_first_worker_that_answers(client, monkeypatch):
    from apps.jobs import inspect

    asked = []

    def take_snapshot(limit=None):
        asked.append(limit)
        return inspect.Snapshot(timezone.now(), True, workers=(inspect.Worker("w"),))

    monkeypatch.setattr(inspect, "take_snapshot", take_snapshot)
    client.get("/readyz")
    client.get("/readyz")
    assert asked == [1]  # and the answer is cached between probes


@pytest.mark.django_db
def test_anonymous_callers_get_the_status_code_and_overall_status_only(client, redis_url):
    heartbeat.record("beat")
    point_celery_at(redis_url.rsplit("/", 1)[0] + "/7")  # a database no worker listens on
    try:
        response = client.get("/readyz")
    finally:
        point_celery_at(redis_url)
    assert (response.status_code, response.json()) == (503, {"status": "fail"})


@pytest.mark.django_db(transaction=True)
def test_anonymous_callers_learn_no_worker_names_or_heartbeat_ages(client, celery_worker):
    heartbeat.record("beat")
    response = client.get("/readyz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})
    assert celery_worker.hostname.encode() not in response.content


@pytest.mark.django_db
def test_signed_in_users_who_are_not_staff_get_the_status_only(client):
    client.force_login(make_user("nina", staff=False))
    response = client.get("/readyz")
    assert (response.status_code, response.json()) == (503, {"status": "fail"})


@pytest.mark.django_db
def test_anonymous_callers_are_not_told_the_database_error(client, monkeypatch):
    response = readyz_with_the_database_down(
        client, monkeypatch, "connection refused by db.internal:5432"
    )
    assert (response.status_code, response.json()) == (503, {"status": "fail"})


@pytest.mark.django_db
def test_a_staff_session_still_gets_a_503_when_the_database_is_down(client, monkeypatch):
    client.force_login(make_superuser())
    response = readyz_with_the_database_down(client, monkeypatch)
    assert (response.status_code, response.json()) == (503, {"status": "fail"})
