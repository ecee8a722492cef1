"""Rows written straight into the tables (an older version, a hand edit) stop nothing."""

import pytest
from django.urls import reverse

from apps.control import worker
from apps.control.models import QueuePause, RateLimit
from project import celery_app

from .helpers import ADD

pytestmark = [pytest.mark.django_db, pytest.mark.once]


@pytest.fixture
def add_task():
    task = celery_app.tasks[ADD]
    before = task.rate_limit
    yield task
    task.rate_limit = before
    worker._limited.discard(ADD)


@pytest.mark.parametrize("rate", ["abc", "", "10/d", "0/m", "1e309/s"])
def test_a_worker_skips_a_stored_rate_limit_celery_could_not_read(add_task, rate, caplog):
    RateLimit.objects.create(job_name=ADD, rate=rate)

    worker.apply_rate_limits(celery_app)

    assert add_task.rate_limit == type(add_task).rate_limit
    assert "skipped" in caplog.text


def test_a_good_stored_rate_limit_is_applied_by_a_starting_worker(add_task):
    RateLimit.objects.create(job_name=ADD, rate="10/m")
    worker.apply_rate_limits(celery_app)
    assert add_task.rate_limit == "10/m"


def test_the_job_page_shows_a_broken_stored_limit_instead_of_failing(root_client):
    RateLimit.objects.create(job_name=ADD, rate="abc")

    page = root_client.get(reverse("jobs:job", args=[ADD]))
    total = root_client.get(reverse("control:rate-total", args=[ADD]))

    assert page.status_code == 200 and total.status_code == 200
    assert "ignored" in page.text


def test_the_dashboard_lists_paused_queues_with_odd_names(root_client):
    for name in ["a/b", "tab\there", "", " "]:
        QueuePause.objects.create(queue=name)

    part = root_client.get(reverse("ops:part", args=["queues"]))

    assert part.status_code == 200
    assert "<td>a/b</td>" in part.text
    assert reverse("control:resume", args=["a/b"]) in part.text
