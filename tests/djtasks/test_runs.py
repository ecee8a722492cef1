"""A Tasks API run is a run like any other: re-run, cancelled before it starts, and
enqueued from async code or as a coroutine."""

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest

from apps.demo.tasks_api.tasks import echo_later, greet
from apps.jobs.models import Run, Source, State
from tests.helpers import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

IDLE = "djtasks-idle-runs"  # a queue no worker consumes


def finished(run: Run) -> Run | None:
    run.refresh_from_db()
    return run if run.is_finished else None


def test_a_finished_tasks_api_run_can_be_run_again_from_its_page(root_client, celery_worker):
    first = greet.enqueue("again", shout=True)
    wait_for(lambda: finished(Run.objects.get(task_id=first.id)))
    response = root_client.post(f"/runs/{Run.objects.get(task_id=first.id).pk}/rerun/")
    assert response.status_code == 302
    again = Run.objects.exclude(task_id=first.id).get()
    assert (again.args, again.parameters, again.source) == (["again"], {"shout": True},
                                                            Source.WEB)  # fmt: skip
    wait_for(lambda: finished(again))
    assert greet.get_result(again.task_id).return_value == "HELLO, AGAIN!"


def test_a_queued_tasks_api_run_cancelled_from_its_page_reads_back_failed(root_client, settings):
    settings.TASKS = {"default": {**settings.TASKS["default"], "QUEUES": ["default", IDLE]}}
    result = greet.using(queue_name=IDLE).enqueue("never")
    run = Run.objects.get(task_id=result.id)
    assert root_client.post(f"/runs/{run.pk}/cancel/").status_code == 302
    assert finished(run).state == State.CANCELLED
    cancelled = greet.get_result(result.id)
    assert (cancelled.status, cancelled.errors) == ("FAILED", [])


def run_coroutine(coroutine):
    """asyncio.run on a thread of its own: a session fixture (Playwright's sync API) may
    keep an event loop running on the test's thread."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def test_aenqueue_records_and_sends_like_enqueue(celery_worker):
    result = run_coroutine(greet.aenqueue("async"))
    done = wait_for(lambda: (r := greet.get_result(result.id)).is_finished and r)
    assert done.return_value == "Hello, async!"


def test_an_async_task_runs_to_its_end_on_the_worker(celery_worker):
    result = echo_later.enqueue("later", seconds=0.01)
    done = wait_for(lambda: (r := echo_later.get_result(result.id)).is_finished and r)
    assert done.return_value == "later"


def test_a_task_whose_run_record_is_gone_still_runs_with_its_context(settings, celery_worker):
    from django_celery_results.models import TaskResult as StoredResult

    from apps.demo.tasks_api.tasks import whoami
    from project import celery_app

    orphans = "djtasks-orphans"
    settings.TASKS = {"default": {**settings.TASKS["default"], "QUEUES": ["default", orphans]}}
    result = whoami.using(queue_name=orphans).enqueue(note="orphan")
    Run.objects.filter(task_id=result.id).delete()  # pruned, or written by an older version
    control = {"destination": [celery_worker.hostname], "reply": True}
    celery_app.control.add_consumer(orphans, **control)
    try:
        succeeded = StoredResult.objects.filter(task_id=result.id, status="SUCCESS")
        stored = wait_for(succeeded.first)
    finally:
        celery_app.control.cancel_consumer(orphans, **control)
    assert '"attempt": 1' in stored.result and result.id in stored.result
