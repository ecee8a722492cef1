"""A pipeline's secret given to its steps: each step's run records it masked, as any run
does (apps/jobs/secrets.py), while its message carries the value the job needs; running
a step again asks for it, and the sweeper does not send a step whose secret it lacks."""

import json
from datetime import timedelta
from io import StringIO

import pytest
from celery.signals import before_task_publish
from django.core.management import call_command
from django.utils import timezone

from apps.jobs import secrets, sweeper
from apps.jobs.models import Run, State
from apps.pipelines import running
from tests.api.helpers import token_client
from tests.helpers import make_user, wait_for
from tests.jobs.secret_job import NAME as USE_SECRET
from tests.jobs.secret_job import SECRET, fingerprint

from . import pipelines_for_tests as P

PIPELINE = P.with_a_secret.name


@pytest.fixture
def published():
    """(task name, kwargs, kwargsrepr) of each message published during the test."""
    sent = []

    def keep(sender, body, headers, **kwargs):
        sent.append((sender, body[1], headers["kwargsrepr"]))

    before_task_publish.connect(keep)
    yield sent
    before_task_publish.disconnect(keep)


@pytest.fixture
def alice():
    """May run the pipeline and the job its steps run."""
    return make_user("alice", jobs=(PIPELINE, USE_SECRET))


def started_through_the_api(user) -> Run:
    body = {"parameters": {"token": SECRET, "label": "piped"}}
    answer = token_client(user).post(f"/api/jobs/{PIPELINE}/runs", json.dumps(body),
                                     content_type="application/json")  # fmt: skip
    assert answer.status_code == 201, answer.content
    return Run.objects.get(pk=answer.json()["id"])


def built_by_its_task(run: Run) -> Run:
    """What the pipeline's task does with the clear values its message brought."""
    Run.objects.filter(pk=run.pk).update(state=State.STARTED)
    running.start(running.get_pipeline(PIPELINE), run, {"token": SECRET, "label": "piped"})
    return run


@pytest.mark.django_db
def test_a_step_records_its_secret_masked_while_its_message_carries_it(alice, published):
    run = built_by_its_task(started_through_the_api(alice))
    first = run.steps.get(step="first")
    assert first.parameters == {"token": secrets.MASK, "label": "piped"}
    assert run.steps.get(step="second").parameters["token"] == secrets.MASK
    [(_, kwargs, kwargsrepr)] = [m for m in published if m[0] == USE_SECRET]
    assert kwargs == {"token": SECRET, "label": "piped"}
    assert SECRET not in kwargsrepr


@pytest.mark.django_db
def test_a_step_s_page_api_answer_and_status_never_show_the_secret(client, alice):
    run = built_by_its_task(started_through_the_api(alice))
    step = run.steps.get(step="first")
    client.force_login(alice)
    page = client.get(step.get_absolute_url())
    api = token_client(alice).get(f"/api/runs/{step.pk}")
    status = StringIO()
    call_command("jobs", "status", str(step.pk), "--json", stdout=status)
    assert page.status_code == api.status_code == 200
    assert api.json()["parameters"]["token"] == secrets.MASK
    for shown in (page.content.decode(), api.content.decode(), status.getvalue()):
        assert SECRET not in shown
    found = token_client(alice).get("/api/runs", {"param.token": SECRET, "source": "pipeline"})
    assert found.status_code == 200 and found.json()["items"] == []


@pytest.mark.django_db
def test_running_a_step_again_asks_for_the_secret_as_any_run_does(alice):
    step = built_by_its_task(started_through_the_api(alice)).steps.get(step="first")
    api = token_client(alice)
    refused = api.post(f"/api/runs/{step.pk}/retry", content_type="application/json")
    assert refused.status_code == 422 and "token" in refused.json()["detail"]
    assert not Run.objects.filter(rerun_of=step).exists()
    given = {"secrets": {"token": "n3w-t0ken"}}
    accepted = api.post(f"/api/runs/{step.pk}/retry", given, content_type="application/json")
    assert accepted.status_code == 201, accepted.content
    assert accepted.json()["parameters"]["token"] == secrets.MASK


@pytest.mark.django_db
def test_run_again_on_a_step_s_page_asks_for_the_secret_in_a_prefilled_form(client, alice):
    step = built_by_its_task(started_through_the_api(alice)).steps.get(step="first")
    client.force_login(alice)
    response = client.post(f"/runs/{step.pk}/rerun/", follow=True)
    assert response.redirect_chain[-1][0] == f"/jobs/{USE_SECRET}/?rerun={step.pk}"
    assert "enter it again" in response.content.decode()
    assert not Run.objects.filter(rerun_of=step).exists()


@pytest.mark.django_db
def test_a_step_whose_message_was_lost_is_failed_not_sent_and_its_pipeline_fails(
    alice, published, monkeypatch
):
    run = built_by_its_task(started_through_the_api(alice))
    published.clear()
    first = run.steps.get(step="first")
    # As the canvas left it, its message then lost by the broker.
    run.steps.filter(pk=first.pk).update(
        state=State.QUEUED, queued_at=timezone.now() - timedelta(minutes=5)
    )
    monkeypatch.setattr(sweeper.broker_held, "held_task_ids", lambda queues: set())
    sweeper.resend_lost(recheck_after=0)
    first.refresh_from_db()
    assert first.state == State.FAILED
    assert first.note.startswith("Not sent: its secret parameters (token) are not stored.")
    assert published == []
    running.sweep()
    run.refresh_from_db()
    assert (run.state, run.note) == (State.FAILED, "Failed at step first.")


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
@pytest.mark.postgres_pass
def test_each_step_runs_with_the_secret_and_records_only_its_mask(celery_worker):
    alice = make_user("alice", jobs=(PIPELINE, USE_SECRET))
    run = started_through_the_api(alice)
    wait_for(lambda: Run.objects.filter(pk=run.pk, state=State.SUCCEEDED).exists(), timeout=60)
    steps = {step.step: step for step in run.steps.all()}
    proof = f"fingerprint {fingerprint(SECRET)}"
    # The second step's label was filled from the first's result in the worker.
    assert steps["second"].parameters == {"token": secrets.MASK, "label": proof}
    api = token_client(alice)
    for step in steps.values():
        answer = api.get(f"/api/runs/{step.pk}")
        assert answer.json()["result"] == proof  # the job had the clear value
        assert SECRET not in answer.content.decode()
