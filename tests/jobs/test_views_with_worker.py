"""The web views end to end, with the real worker and Redis."""

import uuid

import pytest

from apps.jobs.models import Run, State
from tests.helpers import make_user, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

COUNTDOWN = "apps.demo.tasks.countdown"
HTMX = {"HTTP_HX_REQUEST": "true"}


def finished(run: Run) -> Run | None:
    run.refresh_from_db()
    return run if run.is_finished else None


@pytest.fixture
def alice(client):
    user = make_user("alice", jobs=(COUNTDOWN,))
    client.force_login(user)
    return user


def start_countdown(client, seconds: int) -> Run:
    data = {"seconds": str(seconds), "idempotency_key": uuid.uuid4()}
    response = client.post(f"/jobs/{COUNTDOWN}/", data)
    assert response.status_code == 302
    return Run.objects.get(pk=response["Location"].strip("/").rsplit("/", 1)[-1])


def test_a_countdown_started_from_the_form_succeeds_and_its_page_stops_polling(
    client, alice, celery_worker
):
    run = start_countdown(client, 1)
    assert wait_for(lambda: finished(run), timeout=30).state == State.SUCCEEDED
    partial = client.get(run.get_absolute_url(), **HTMX).content.decode()
    assert "hx-trigger" not in partial
    assert "counted down 1 s" in partial


def test_cancel_through_the_view_stops_a_running_countdown(client, alice, celery_worker):
    run = start_countdown(client, 30)
    wait_for(lambda: Run.objects.filter(pk=run.pk, progress_done__gte=1).exists(), timeout=30)
    assert 'hx-trigger="every 1s"' in client.get(run.get_absolute_url(), **HTMX).content.decode()
    response = client.post(f"/runs/{run.pk}/cancel/")
    assert response["Location"] == run.get_absolute_url()
    assert wait_for(lambda: finished(run), timeout=30).state == State.CANCELLED
    assert run.progress_done < 30
    assert "hx-trigger" not in client.get(run.get_absolute_url(), **HTMX).content.decode()


def test_a_message_for_a_task_no_worker_knows_fails_its_run_with_a_note(client, celery_worker):
    from project import celery_app
    from tests.helpers import make_superuser

    sent = celery_app.send_task("no.such.task", args=[1])
    run = Run.objects.get(task_id=sent.id)  # recorded by before_task_publish
    assert wait_for(lambda: finished(run), timeout=30).state == State.FAILED
    assert run.note == "No worker knows task 'no.such.task': its message was discarded."
    client.force_login(make_superuser())
    page = client.get(run.get_absolute_url()).content.decode()
    assert "No worker knows task &#x27;no.such.task&#x27;" in page
