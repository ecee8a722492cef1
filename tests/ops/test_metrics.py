"""/metrics: Prometheus text read from the database, behind a token or an address list."""

from datetime import timedelta
from ipaddress import ip_network

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from apps.jobs.models import State
from apps.ops import heartbeat
from apps.ops.models import Heartbeat, Incident, Kind
from tests.helpers import make_run

from .makers import given_snapshot, make_finished_run

pytestmark = pytest.mark.django_db


def scrape(client, **headers) -> dict[str, list]:
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    families = text_string_to_metric_families(response.content.decode())
    return {family.name: family.samples for family in families}


def value(samples, **labels) -> float:
    return next(s.value for s in samples if all(s.labels.get(k) == v for k, v in labels.items()))


def test_metrics_count_recent_runs_by_job_and_state(client):
    given_snapshot("w1@host")
    for _ in range(3):
        make_finished_run()
    make_finished_run(state=State.FAILED)
    make_run("apps.demo.tasks.countdown", state=State.PROGRESS)
    make_finished_run(queued_at=timezone.now() - timedelta(hours=3))  # outside the hour
    metrics = scrape(client)
    runs = metrics["switchyard_runs"]
    assert value(runs, job="apps.demo.tasks.add", state="succeeded") == 3
    assert value(runs, job="apps.demo.tasks.add", state="failed") == 1
    assert value(metrics["switchyard_runs_active"], state="progress") == 1


def test_metrics_have_a_run_duration_histogram_per_job(client):
    given_snapshot("w1@host")
    make_finished_run(seconds=0.3)
    make_finished_run(seconds=20)
    samples = scrape(client)["switchyard_run_duration_seconds"]
    job = "apps.demo.tasks.add"
    assert value(samples, job=job, le="0.5") == 1
    assert value(samples, job=job, le="30.0") == 2
    assert value(samples, job=job, le="+Inf") == 2
    count = next(s for s in samples if s.name.endswith("_count") and s.labels["job"] == job)
    assert count.value == 2


def test_metrics_show_queue_depth_workers_online_beat_age_and_missed_runs(client):
    given_snapshot("w1@host", "w2@host", queues={"celery": 7, "reports": 2})
    heartbeat.record("beat")
    Heartbeat.objects.filter(name="beat").update(seen_at=timezone.now() - timedelta(seconds=42))
    now = timezone.now()
    Incident.objects.create(kind=Kind.MISSED_RUN, key="nightly", title="t", opened_at=now,
                            last_seen_at=now)  # fmt: skip
    metrics = scrape(client)
    assert value(metrics["switchyard_queue_depth"], queue="celery") == 7
    assert value(metrics["switchyard_queue_depth"], queue="reports") == 2
    assert value(metrics["switchyard_workers_online"]) == 2
    assert value(metrics["switchyard_broker_up"]) == 1
    assert 42 <= value(metrics["switchyard_beat_heartbeat_age_seconds"]) < 60
    assert value(metrics["switchyard_missed_runs"]) == 1
    assert value(metrics["switchyard_incidents_open"], kind="missed_run") == 1


def test_with_the_broker_down_metrics_still_answer_and_say_so(client):
    given_snapshot(broker_ok=False, error="Connection refused")
    metrics = scrape(client)
    assert value(metrics["switchyard_broker_up"]) == 0
    assert value(metrics["switchyard_workers_online"]) == 0


# Protection ---------------------------------------------------------------------------


def test_the_token_opens_metrics_from_any_address(client, settings):
    settings.METRICS_TOKEN, settings.METRICS_ALLOWED_IPS = "s3cret", []
    given_snapshot("w1@host")
    scrape(client, HTTP_AUTHORIZATION="Bearer s3cret", REMOTE_ADDR="203.0.113.9")


@pytest.mark.parametrize("header", [None, "Bearer wrong", "s3cret", "Basic czNjcmV0"])
def test_a_missing_or_wrong_token_is_refused_with_401(client, settings, header):
    settings.METRICS_TOKEN, settings.METRICS_ALLOWED_IPS = "s3cret", []
    extra = {"HTTP_AUTHORIZATION": header} if header else {}
    assert client.get("/metrics", **extra).status_code == 401


def test_an_allowed_network_may_scrape_without_a_token(client, settings):
    settings.METRICS_TOKEN, settings.METRICS_ALLOWED_IPS = "", [ip_network("10.0.0.0/8")]
    given_snapshot("w1@host")
    scrape(client, REMOTE_ADDR="10.1.2.3")


def test_other_addresses_are_refused_with_403_when_no_token_is_configured(client, settings):
    settings.METRICS_TOKEN, settings.METRICS_ALLOWED_IPS = "", [ip_network("10.0.0.0/8")]
    assert client.get("/metrics", REMOTE_ADDR="192.0.2.1").status_code == 403


def test_by_default_only_localhost_may_scrape(client, settings):
    assert [str(net) for net in settings.METRICS_ALLOWED_IPS] == ["127.0.0.1/32", "::1/128"]
    assert client.get("/metrics", REMOTE_ADDR="192.0.2.1").status_code == 403
