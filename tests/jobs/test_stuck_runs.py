"""Stuck runs are flagged on their page and the dashboard, and can be re-sent."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.jobs.models import Run, State
from tests.helpers import make_run, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def an_hour_ago():
    return timezone.now() - timedelta(hours=1)


def test_a_run_queued_for_an_hour_is_flagged_stuck_on_its_page(root_client):
    run = make_run(queued_at=an_hour_ago(), parameters={"x": 1, "y": 2})
    page = root_client.get(reverse("jobs:run", args=[run.pk])).content.decode()
    assert "Stuck:" in page and "no worker has picked this run up" in page
    assert reverse("jobs:resend", args=[run.pk]) in page


def test_a_fresh_queued_run_is_not_flagged(root_client):
    run = make_run(parameters={"x": 1, "y": 2})
    page = root_client.get(reverse("jobs:run", args=[run.pk])).content.decode()
    assert "Stuck:" not in page


def test_a_run_started_on_a_worker_that_is_gone_shows_with_that_lost_worker_on_the_dashboard(
    root_client, celery_worker
):
    run = make_run(state=State.STARTED, worker="celery@long-gone", started_at=an_hour_ago())
    dashboard = root_client.get("/").content.decode()
    assert '<tr class="worker offline lost">' in dashboard and "celery@long-gone" in dashboard
    assert run.get_absolute_url() in dashboard
    # The sweeper takes it back by itself: no button to press (its own page still has one).
    assert reverse("jobs:resend", args=[run.pk]) not in dashboard


def test_re_sending_a_stuck_run_gets_it_done_by_a_worker(root_client, celery_worker):
    run = make_run(queued_at=an_hour_ago(), parameters={"x": 4, "y": 5})
    response = root_client.post(reverse("jobs:resend", args=[run.pk]))
    assert response.status_code == 302
    wait_for(lambda: Run.objects.filter(pk=run.pk, state=State.SUCCEEDED).exists())
    assert Run.objects.get(pk=run.pk).deliveries == 1


def test_re_sending_a_finished_run_does_nothing(root_client):
    run = make_run(state=State.SUCCEEDED, finished_at=timezone.now())
    root_client.post(reverse("jobs:resend", args=[run.pk]))
    assert Run.objects.get(pk=run.pk).state == State.SUCCEEDED
