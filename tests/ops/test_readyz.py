"""/healthz says the process is alive; /readyz names each dependency and its state."""

from datetime import timedelta

import pytest
from django.db import OperationalError, connection
from django.utils import timezone

from apps.devstack import processes
from apps.ops import heartbeat
from apps.ops.models import Heartbeat
from tests.helpers import point_celery_at


def test_healthz_answers_without_the_database(client, django_db_blocker):
    with django_db_blocker.block():
        response = client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def checks(response) -> dict[str, bool]:
    return {name: check["ok"] for name, check in response.json()["checks"].items()}


@pytest.mark.django_db(transaction=True)
def test_readyz_is_200_when_database_broker_worker_and_beat_all_answer(client, celery_worker):
    heartbeat.record("beat")
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "ok"
    assert checks(response) == {"database": True, "broker": True, "workers": True, "beat": True}


@pytest.mark.django_db(transaction=True)
def test_readyz_is_503_when_beats_heartbeat_is_stale(client, celery_worker, settings):
    settings.BEAT_HEARTBEAT_MAX_AGE = 60
    heartbeat.record("beat")
    Heartbeat.objects.filter(name="beat").update(seen_at=timezone.now() - timedelta(minutes=2))
    response = client.get("/readyz")
    assert response.status_code == 503
    assert checks(response) == {"database": True, "broker": True, "workers": True, "beat": False}
    assert response.json()["checks"]["beat"]["detail"].startswith("last heartbeat 12")


@pytest.mark.django_db
def test_readyz_is_503_when_beat_never_reported(client):
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["beat"]["detail"] == "no heartbeat recorded yet"


@pytest.mark.django_db
def test_readyz_is_503_when_the_broker_is_unreachable(client, redis_url):
    heartbeat.record("beat")
    point_celery_at(f"redis://127.0.0.1:{processes.free_port()}/0")
    try:
        response = client.get("/readyz")
    finally:
        point_celery_at(redis_url)
    assert response.status_code == 503
    assert checks(response) == {"database": True, "broker": False, "workers": False,
                                "beat": True}  # fmt: skip
    assert response.json()["checks"]["broker"]["detail"].startswith("unreachable")


@pytest.mark.django_db
def test_readyz_is_503_when_no_worker_answers(client, redis_url):
    heartbeat.record("beat")
    point_celery_at(redis_url.rsplit("/", 1)[0] + "/7")  # a database no worker listens on
    try:
        response = client.get("/readyz")
    finally:
        point_celery_at(redis_url)
    assert response.status_code == 503
    assert checks(response)["workers"] is False
    assert response.json()["checks"]["workers"]["detail"] == "no worker answered"


@pytest.mark.django_db
def test_readyz_is_503_when_the_database_is_unreachable(client, monkeypatch):
    from .makers import given_snapshot

    given_snapshot("w1@host")

    def refuse(*args, **kwargs):
        raise OperationalError("connection refused")

    connection.close()
    monkeypatch.setattr(connection, "ensure_connection", refuse)
    response = client.get("/readyz")
    monkeypatch.undo()
    assert response.status_code == 503
    assert checks(response) == {"database": False, "broker": True, "workers": True,
                                "beat": False}  # fmt: skip
    assert response.json()["checks"]["database"]["detail"] == "unreachable: connection refused"


@pytest.mark.django_db
def test_readyz_stops_waiting_at_the_first_worker_that_answers(client, monkeypatch):
    from apps.ops import inspect

    asked = []

    def take_snapshot(limit=None):
        asked.append(limit)
        return inspect.Snapshot(timezone.now(), True, workers=(inspect.Worker("w"),))

    monkeypatch.setattr(inspect, "take_snapshot", take_snapshot)
    client.get("/readyz")
    client.get("/readyz")
    assert asked == [1]  # and the answer is cached between probes
