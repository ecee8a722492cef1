"""The run's lifecycle rules, at the model: each transition moves a run only from the
states that allow it, and says how many runs it moved."""

import pytest
from django.db import connection, transaction
from django.utils import timezone

from apps.jobs.models import FINISHED_STATES, Run, Source, State
from tests.helpers import make_run, make_user

pytestmark = pytest.mark.django_db


def runs(run: Run):
    return Run.objects.filter(pk=run.pk)


def state_of(run: Run) -> State:
    return Run.objects.values_list("state", flat=True).get(pk=run.pk)


# Sent and started ------------------------------------------------------------------------


def test_only_a_run_waiting_to_be_sent_is_marked_queued():
    waiting, started = make_run(state=State.PENDING_SEND), make_run(state=State.STARTED)
    assert Run.objects.filter(pk__in=[waiting.pk, started.pk]).mark_queued() == 1
    assert (state_of(waiting), state_of(started)) == (State.QUEUED, State.STARTED)


def test_a_queued_run_is_claimed_with_its_worker_and_one_more_delivery():
    run = make_run(state=State.QUEUED)
    assert runs(run).claim_start(worker="celery@a", retries=2) == 1
    run.refresh_from_db()
    assert (run.state, run.worker, run.retries, run.deliveries) == (
        State.STARTED, "celery@a", 2, 1
    )  # fmt: skip
    assert run.started_at is not None and run.note == ""


def test_a_redelivered_run_is_claimed_again_with_a_note_saying_so():
    run = make_run(state=State.STARTED, deliveries=1)
    assert runs(run).claim_start(worker="celery@b", redelivered=True) == 1
    run.refresh_from_db()
    assert (run.deliveries, run.worker) == (2, "celery@b")
    assert run.note == "Redelivered after its worker was lost."


@pytest.mark.parametrize("state", FINISHED_STATES)
def test_a_finished_run_is_not_claimed_again(state):
    run = make_run(state=state, finished_at=timezone.now())
    assert runs(run).claim_start(worker="celery@late") == 0
    run.refresh_from_db()
    assert (run.state, run.worker, run.deliveries) == (state, "", 0)


# Progress and outcome --------------------------------------------------------------------


def test_progress_moves_a_started_run_to_progress():
    run = make_run(state=State.STARTED)
    assert runs(run).report_progress(1, 4, "one of four") == 1
    run.refresh_from_db()
    assert (run.state, run.percent, run.progress_message) == (State.PROGRESS, 25, "one of four")


def test_progress_does_not_reopen_a_finished_run():
    run = make_run(state=State.FAILED, finished_at=timezone.now())
    assert runs(run).report_progress(1, 4, "late") == 0
    assert state_of(run) == State.FAILED


def test_progress_of_a_run_whose_cancel_was_asked_is_refused():
    run = make_run(state=State.STARTED, cancel_requested_at=timezone.now())
    assert runs(run).report_progress(1, 4, "") == 0
    assert state_of(run) == State.STARTED


def test_an_outcome_finishes_a_running_run_with_its_time_and_note():
    run = make_run(state=State.PROGRESS)
    assert runs(run).finish(State.FAILED, note="boom") == 1
    run.refresh_from_db()
    assert (run.state, run.note) == (State.FAILED, "boom") and run.finished_at is not None


def test_a_retry_is_an_outcome_that_does_not_finish_the_run():
    run = make_run(state=State.STARTED)
    assert runs(run).finish(State.RETRYING) == 1
    run.refresh_from_db()
    assert (run.state, run.finished_at, run.is_finished) == (State.RETRYING, None, False)


@pytest.mark.parametrize("state", FINISHED_STATES)
def test_a_finished_run_keeps_its_outcome_when_another_arrives(state):
    run = make_run(state=state, note="first")
    assert runs(run).finish(State.SUCCEEDED, note="second") == 0
    run.refresh_from_db()
    assert (run.state, run.note) == (state, "first")


# Cancel and re-send ----------------------------------------------------------------------


@pytest.mark.parametrize("state", [State.PENDING_SEND, State.QUEUED])
def test_cancel_of_a_run_not_started_cancels_it_at_once_and_names_who(state):
    run = make_run(state=state)
    assert run.cancel(by=make_user("alice")) is True
    assert run.state == State.CANCELLED and run.finished_at and run.cancel_requested_at
    assert run.note == "Cancelled before it started, by alice."


@pytest.mark.parametrize("state", [State.STARTED, State.PROGRESS, State.RETRYING])
def test_cancel_of_a_started_run_only_requests_it(state):
    run = make_run(state=state)
    assert run.cancel() is False
    assert run.state == state and run.finished_at is None
    assert run.cancel_requested_at is not None


def test_a_second_cancel_keeps_the_time_of_the_first_request():
    run = make_run(state=State.STARTED)
    run.cancel()
    first = run.cancel_requested_at
    run.cancel()
    assert run.cancel_requested_at == first


def test_a_stuck_run_is_put_back_to_be_sent_but_a_finished_one_is_not():
    stuck, done = make_run(state=State.STARTED), make_run(state=State.SUCCEEDED)
    assert runs(stuck).mark_unsent("again") == 1
    assert runs(done).mark_unsent("again") == 0
    assert (state_of(stuck), state_of(done)) == (State.PENDING_SEND, State.SUCCEEDED)


def test_a_run_left_unsent_is_claimed_by_one_sweeper_only():
    run = make_run(state=State.PENDING_SEND)
    other = Run.objects.get(pk=run.pk)  # a second sweeper read it at the same time
    assert run.claim_send(State.PENDING_SEND) is True
    assert other.claim_send(State.PENDING_SEND) is False
    assert Run.objects.get(pk=run.pk).send_attempts == 1


def test_a_lost_run_delivered_meanwhile_is_not_claimed_to_be_sent_again():
    run = make_run(state=State.QUEUED)
    Run.objects.filter(pk=run.pk).update(deliveries=1)  # a worker took it after all
    assert run.claim_send(State.QUEUED, note="lost") is False
    assert Run.objects.get(pk=run.pk).note == ""


# Skipped by beat -------------------------------------------------------------------------


def unsaved_run(task_id: str) -> Run:
    return Run(task_id=task_id, job_name="apps.demo.tasks.add", source=Source.SCHEDULE,
               schedule_name="every minute", requested_by_label="every minute")  # fmt: skip


def test_a_skipped_run_is_recorded_finished_with_its_reason():
    unsaved_run("skip-1").record_skipped("previous run 7 still running")
    run = Run.objects.get(task_id="skip-1")
    assert (run.state, run.note) == (State.SKIPPED, "previous run 7 still running")
    assert run.finished_at == run.queued_at


def test_recording_a_skip_leaves_a_run_already_recorded_under_its_task_id_alone():
    run = make_run(state=State.QUEUED)
    unsaved_run(run.task_id).record_skipped("late")
    assert (state_of(run), Run.objects.count()) == (State.QUEUED, 1)


# The result backend's statements are the same transitions ---------------------------------


def execute(statement: tuple[str, list]) -> int:
    with connection.cursor() as cursor:
        cursor.execute(*statement)
        return cursor.rowcount


def test_the_claim_statement_claims_what_claim_start_claims():
    queued, done = make_run(state=State.QUEUED), make_run(state=State.CANCELLED)
    for run, expected in ((queued, 1), (done, 0)):
        statement = Run.claim_start_statement(connection, run.task_id, worker="celery@a")
        assert execute(statement) == expected
    queued.refresh_from_db()
    assert (queued.state, queued.worker, queued.deliveries) == (State.STARTED, "celery@a", 1)
    assert state_of(done) == State.CANCELLED


def test_with_async_commit_only_a_runs_first_claim_commits_without_its_flush():
    """A later claim (a retry, a redelivery) waits for its flush: its execution's result
    could be refused after a crash that lost the claim (apps/jobs/sending.py)."""
    if connection.vendor != "postgresql":
        pytest.skip("synchronous_commit is PostgreSQL's")

    def claim_leaves_synchronous_commit(run) -> str:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO on")  # as in production
            statement = Run.claim_start_statement(connection, run.task_id, worker="celery@a",
                                                  no_flush=True)  # fmt: skip
            assert execute(statement) == 1
            cursor.execute("SELECT current_setting('synchronous_commit')")  # till commit
            return cursor.fetchone()[0]

    assert claim_leaves_synchronous_commit(make_run(state=State.QUEUED)) == "off"
    assert claim_leaves_synchronous_commit(make_run(state=State.RETRYING, deliveries=1)) == "on"


def test_the_finish_statement_leaves_a_finished_run_alone():
    running, done = make_run(state=State.STARTED), make_run(state=State.SKIPPED)
    assert execute(Run.finish_statement(connection, running.task_id, State.SUCCEEDED)) == 1
    assert execute(Run.finish_statement(connection, done.task_id, State.FAILED)) == 0
    assert (state_of(running), state_of(done)) == (State.SUCCEEDED, State.SKIPPED)
