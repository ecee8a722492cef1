"""Dispatch while the broker is down: recorded, told, and sent exactly once later."""

import time
from datetime import timedelta

import pytest
from kombu.exceptions import OperationalError

from apps.demo.tasks import add
from apps.devstack import processes
from apps.jobs.catalog import get_job
from apps.jobs.dispatch import start_run
from apps.jobs.models import Run, Source, State
from apps.jobs.sweeper import send_pending
from tests.helpers import point_celery_at, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def broker_down(redis_url):
    """Point the app at a closed port for the test, then back at the real Redis."""
    point_celery_at(f"redis://127.0.0.1:{processes.free_port()}/0")
    yield
    point_celery_at(redis_url)


def test_starting_a_job_while_the_broker_is_down_returns_quickly_and_waits_to_be_sent(
    broker_down,
):
    began = time.monotonic()
    run = start_run(get_job("apps.demo.tasks.add"), {"x": 1, "y": 2}, source=Source.WEB)
    assert time.monotonic() - began < 10
    run.refresh_from_db()
    assert run.state == State.PENDING_SEND


def test_a_plain_delay_that_fails_to_publish_leaves_a_pending_run(broker_down):
    with pytest.raises(OperationalError):
        add.delay(1, 1)
    assert Run.objects.get().state == State.PENDING_SEND


def test_the_sweeper_sends_a_pending_run_once_the_broker_is_back(
    broker_down, redis_url, celery_worker
):
    run = start_run(get_job("apps.demo.tasks.add"), {"x": 4, "y": 5}, source=Source.API)
    assert send_pending(older_than=timedelta(0)) == 0
    point_celery_at(redis_url)
    assert send_pending(older_than=timedelta(0)) == 1
    assert send_pending(older_than=timedelta(0)) == 0
    run.refresh_from_db()
    wait_for(lambda: Run.objects.filter(pk=run.pk, state=State.SUCCEEDED).exists())
    assert Run.objects.get(pk=run.pk).deliveries == 1


def test_runs_started_just_after_a_failed_send_wait_to_be_sent_without_trying_again(
    broker_down,
):
    job = get_job("apps.demo.tasks.add")
    start_run(job, {"x": 1, "y": 2}, source=Source.WEB)  # waits out the broker's timeouts
    began = time.monotonic()
    runs = [start_run(job, {"x": i, "y": 2}, source=Source.API) for i in range(5)]
    assert time.monotonic() - began < 0.5
    assert {run.state for run in Run.objects.filter(pk__in=[r.pk for r in runs])} == {
        State.PENDING_SEND
    }
