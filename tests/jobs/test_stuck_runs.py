"""Stuck runs are flagged on their page and the dashboard, and can be re-sent."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.jobs.models import Run, State
from tests.helpers import make_run, make_user, wait_for
from tests.ops.makers import given_snapshot

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
    response = root_client.post(reverse("jobs:resend", args=[run.pk]), follow=True)
    assert Run.objects.get(pk=run.pk).state == State.SUCCEEDED
    assert said(response) == ["Not sent again: it has already finished (succeeded)."]


def said(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def running_on(worker: str, job_name: str = "apps.demo.tasks.countdown", **kw) -> Run:
    now = timezone.now()
    kw.setdefault("started_at", now)
    kw.setdefault("parameters", {"seconds": 600})
    return make_run(job_name, state=State.PROGRESS, worker=worker, queued_at=now,
                    attempt="abc123", deliveries=1, progress_done=5, progress_total=600,
                    **kw)  # fmt: skip


def test_a_healthy_running_run_is_not_re_sent_by_hand(client):
    """Its page shows no Resend, and a Resend posted anyway is refused: the execution
    that holds it keeps it (its outcome is not refused, its body does not run twice)."""
    given_snapshot("w1@host")
    client.force_login(make_user("hank", jobs=("apps.demo.tasks.countdown",)))
    run = running_on("w1@host")
    page = client.get(reverse("jobs:run", args=[run.pk]))
    assert page.context["stuck"] is False
    assert reverse("jobs:resend", args=[run.pk]) not in page.content.decode()
    response = client.post(reverse("jobs:resend", args=[run.pk]), follow=True)
    assert response.redirect_chain == [(run.get_absolute_url(), 302)]
    assert said(response) == ["Not sent again: its worker w1@host is answering."]
    after = Run.objects.get(pk=run.pk)
    assert (after.state, after.attempt, after.note, after.send_attempts) == (
        State.PROGRESS, "abc123", "", run.send_attempts,
    )  # fmt: skip


def test_a_run_queued_a_moment_ago_is_not_re_sent_by_hand(root_client, settings):
    settings.STUCK_QUEUED_AFTER_SECONDS = 600
    run = make_run(parameters={"x": 1, "y": 2})
    response = root_client.post(reverse("jobs:resend", args=[run.pk]), follow=True)
    assert said(response) == ["Not sent again: it has been queued for less than 600 s; "
                              "a worker may still pick it up."]  # fmt: skip
    assert Run.objects.get(pk=run.pk).state == State.QUEUED
    assert Run.objects.get(pk=run.pk).note == ""


def test_a_run_on_a_worker_that_no_longer_answers_is_re_sent_by_hand(root_client):
    given_snapshot("w1@host")
    run = running_on("gone@host", "apps.demo.tasks.add", parameters={"x": 1, "y": 2},
                     started_at=an_hour_ago())  # fmt: skip
    page = root_client.get(reverse("jobs:run", args=[run.pk])).content.decode()
    assert reverse("jobs:resend", args=[run.pk]) in page
    response = root_client.post(reverse("jobs:resend", args=[run.pk]), follow=True)
    assert said(response) == ["Sent again."]
    # Sent again (a worker of the session may already be running it): the execution
    # on the lost worker no longer holds it.
    assert Run.objects.get(pk=run.pk).attempt != "abc123"
