"""Fencing: an execution writes its run's progress, outcome and result row only while it
still holds the run (`Run.attempt`), so a worker whose run was taken back writes nothing
over the execution that replaced it."""

import pytest
from celery import states
from django_celery_results.models import TaskResult

from apps.jobs import sweeper
from apps.jobs.models import Run, State
from project import celery_app
from tests.helpers import make_run

from .test_result_backend import make_worker_request, worker_knows

pytestmark = pytest.mark.django_db

IDEMPOTENT = "apps.demo.tasks.add"
NOT_IDEMPOTENT = "apps.maintenance.tasks.run_command"


def store(request, result, status: str) -> None:
    celery_app.backend.store_result(request.id, result, status, request=request)


def started_by_a_worker(job_name: str = IDEMPOTENT):
    """A queued run claimed by an execution through the result backend, as a worker does."""
    run = make_run(job_name, state=State.QUEUED)
    request = make_worker_request(run, hostname="cut-off@host")
    store(request, {"pid": 1}, states.STARTED)
    run.refresh_from_db()
    return run, request


def test_a_claim_writes_the_executions_token_on_the_run():
    run, request = started_by_a_worker()
    assert run.state == State.STARTED
    assert run.attempt == worker_knows(request).attempt != ""


def test_a_run_taken_back_refuses_the_late_outcome_of_the_execution_that_held_it():
    run, request = started_by_a_worker()
    assert sweeper.take_back(run, "cut-off@host") == "resent"
    store(request, 9, states.SUCCESS)
    run.refresh_from_db()
    assert run.state != State.SUCCEEDED and run.attempt != worker_knows(request).attempt
    assert TaskResult.objects.get(task_id=run.task_id).status == states.RETRY


def test_the_execution_that_replaced_it_stores_its_outcome_and_the_late_one_then_changes_nothing():
    run, late = started_by_a_worker()
    sweeper.take_back(run, "cut-off@host")
    again = make_worker_request(run, hostname="other@host")
    store(again, {"pid": 2}, states.STARTED)
    store(again, 5, states.SUCCESS)
    store(late, {"done": 1, "total": 2}, "PROGRESS")
    store(late, 9, states.SUCCESS)
    run.refresh_from_db()
    result = TaskResult.objects.get(task_id=run.task_id)
    assert (run.state, run.worker, run.deliveries) == (State.SUCCEEDED, "other@host", 2)
    assert (result.status, result.result, result.worker) == ("SUCCESS", "5", "other@host")


def test_an_unsafe_run_taken_back_is_failed_with_a_note_and_keeps_its_failure():
    run, late = started_by_a_worker(NOT_IDEMPOTENT)
    assert sweeper.take_back(run, "cut-off@host") == "failed"
    store(late, "done", states.SUCCESS)
    run.refresh_from_db()
    assert run.state == State.FAILED and "answered no ping" in run.note
    assert "not run again" in run.note
    assert TaskResult.objects.get(task_id=run.task_id).status == states.FAILURE


def test_late_progress_of_a_taken_back_run_is_not_shown():
    run, late = started_by_a_worker()
    sweeper.take_back(run, "cut-off@host")
    runs = Run.objects.filter(pk=run.pk)
    assert runs.report_progress(1, 2, "late", attempt=worker_knows(late).attempt) == 0
    assert runs.report_progress(1, 2, "unfenced") == 1  # callers without a token: as before


def test_a_run_the_worker_moved_on_from_is_not_taken_back():
    run, request = started_by_a_worker()
    store(request, 9, states.SUCCESS)
    assert sweeper.take_back(run, "cut-off@host") is None
    assert Run.objects.get(pk=run.pk).state == State.SUCCEEDED


def test_a_run_resent_by_hand_fences_out_its_first_execution():
    run, late = started_by_a_worker()
    assert sweeper.resend(run, alive=set())  # its worker cut-off@host answers no more
    run.refresh_from_db()
    assert run.attempt == ""
    first = worker_knows(late).attempt
    assert Run.objects.filter(pk=run.pk).finish(State.SUCCEEDED, attempt=first) == 0
