"""The result backend: django-celery-results' table, one upsert per state change."""

import uuid

import pytest
from celery import states
from celery.app.task import Context
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_celery_results.models import TaskResult

from apps.demo.tasks import add
from apps.jobs import current_run
from apps.jobs.models import Run, State
from apps.jobs.worker.backend import SwitchyardBackend
from project import celery_app
from tests.helpers import make_run

pytestmark = pytest.mark.django_db


def make_request(**kw) -> Context:
    """A task request as a worker hands it to the backend (protocol 2, result_extended)."""
    kw.setdefault("id", str(uuid.uuid4()))
    kw.setdefault("task", "apps.demo.tasks.add")
    kw.setdefault("args", [4, 5])
    kw.setdefault("kwargs", {})
    kw.setdefault("argsrepr", "(4, 5)")
    kw.setdefault("kwargsrepr", "{}")
    kw.setdefault("hostname", "celery@bench")
    kw.setdefault("periodic_task_name", "add every minute")
    return Context(**kw)


def make_worker_request(run: Run | None = None, **kw) -> Context:
    """A request whose run's updates the backend took over (as the prerun handler does)."""
    if run is not None:
        kw["id"] = run.task_id
    request = make_request(retries=0, delivery_info={}, **kw)
    current_run.begin(request, request.id).backend_writes = True
    return request


def worker_knows(request: Context) -> current_run.CurrentRun:
    return current_run.of(request)


def store(request: Context, result, status: str, traceback=None) -> int:
    """Store one state through the app's backend; return how many queries it took."""
    with CaptureQueriesContext(connection) as queries:
        celery_app.backend.store_result(request.id, result, status, traceback=traceback,
                                        request=request)  # fmt: skip
    return len(queries)


def test_the_app_uses_the_switchyard_backend_on_the_stock_table():
    assert isinstance(celery_app.backend, SwitchyardBackend)
    assert celery_app.backend.TaskModel is TaskResult


def test_each_state_change_is_stored_with_one_query():
    request = make_request()
    assert store(request, {"pid": 1, "hostname": "celery@bench"}, states.STARTED) == 1
    assert store(request, 9, states.SUCCESS) == 1
    assert TaskResult.objects.filter(task_id=request.id).count() == 1


def test_started_then_success_keeps_the_start_time_and_the_extended_fields():
    request = make_request()
    store(request, {"pid": 1}, states.STARTED)
    started = TaskResult.objects.get(task_id=request.id)
    assert started.status == states.STARTED and started.date_started is not None
    store(request, 9, states.SUCCESS)
    done = TaskResult.objects.get(task_id=request.id)
    assert (done.status, done.result) == (states.SUCCESS, "9")
    assert done.date_started == started.date_started
    assert done.date_created == started.date_created
    assert done.date_done >= done.date_started
    assert done.task_name == "apps.demo.tasks.add"
    assert "4, 5" in done.task_args and done.task_kwargs == '"{}"'
    assert (done.worker, done.periodic_task_name) == ("celery@bench", "add every minute")


def test_a_result_stored_without_a_start_has_no_start_time():
    request = make_request()
    store(request, 3, states.SUCCESS)
    assert TaskResult.objects.get(task_id=request.id).date_started is None


def test_a_failure_stores_the_exception_and_traceback_and_reads_back():
    request = make_request()
    store(request, {"pid": 1}, states.STARTED)
    store(request, ValueError("boom"), states.FAILURE, traceback="Traceback: boom")
    stored = TaskResult.objects.get(task_id=request.id)
    assert (stored.status, stored.traceback) == (states.FAILURE, "Traceback: boom")
    meta = celery_app.backend.get_task_meta(request.id, cache=False)
    assert meta["status"] == states.FAILURE
    assert "boom" in str(meta["result"])


def test_the_stored_result_reads_back_through_the_backend():
    request = make_request()
    store(request, {"answer": [1, 2]}, states.SUCCESS)
    meta = celery_app.backend.get_task_meta(request.id, cache=False)
    assert (meta["status"], meta["result"]) == (states.SUCCESS, {"answer": [1, 2]})
    assert meta["task_name"] == "apps.demo.tasks.add"


# The run's own state rides along with the result ------------------------------------------

# One statement on PostgreSQL (a data-modifying WITH); SQLite runs the two in turn.
STATEMENTS = 1 if connection.vendor == "postgresql" else 2


def test_started_is_written_once_to_the_run_alone():
    run = make_run(state=State.QUEUED)
    request = make_worker_request(run)
    assert store(request, {"pid": 1}, states.STARTED) == 1
    run.refresh_from_db()
    assert (run.state, run.worker, run.deliveries) == (State.STARTED, "celery@bench", 1)
    assert run.started_at is not None and not worker_knows(request).skip
    assert not TaskResult.objects.filter(task_id=run.task_id).exists()


def test_started_of_a_run_encodes_no_result_row_it_would_not_write(monkeypatch):
    """Issue 15: a worker's STARTED for a run costs its one UPDATE, not also the
    encoding of a result row (arguments, meta) that is never written."""
    encoded = []
    extended = SwitchyardBackend._get_extended_properties

    def spy(self, request, traceback):
        encoded.append(request.id)
        return extended(self, request, traceback)

    monkeypatch.setattr(SwitchyardBackend, "_get_extended_properties", spy)
    run = make_run(state=State.QUEUED)
    request = make_worker_request(run)
    store(request, {"pid": 1}, states.STARTED)
    assert encoded == []
    store(request, 9, states.SUCCESS)
    assert encoded == [run.task_id]


def test_the_outcome_stores_the_result_with_its_start_and_finishes_the_run_together():
    run = make_run(state=State.QUEUED)
    request = make_worker_request(run)
    store(request, {"pid": 1}, states.STARTED)
    assert store(request, 9, states.SUCCESS) == STATEMENTS
    run.refresh_from_db()
    assert run.state == State.SUCCEEDED and run.finished_at >= run.started_at
    assert worker_knows(request).outcome_stored
    stored = TaskResult.objects.get(task_id=run.task_id)
    assert (stored.status, stored.result) == (states.SUCCESS, "9")
    assert stored.date_started == worker_knows(request).started_at
    assert stored.date_done >= stored.date_started


def test_progress_stores_the_result_row_with_its_start_before_the_outcome():
    run = make_run(state=State.QUEUED)
    request = make_worker_request(run)
    store(request, {"pid": 1}, states.STARTED)
    store(request, {"done": 1, "total": 4}, "PROGRESS")
    stored = TaskResult.objects.get(task_id=run.task_id)
    assert stored.status == "PROGRESS" and stored.date_started == worker_knows(request).started_at


def test_a_retry_marks_the_run_retrying_and_a_failure_failed():
    run = make_run(state=State.QUEUED)
    request = make_worker_request(run)
    store(request, {"pid": 1}, states.STARTED)
    store(request, ValueError("again"), states.RETRY)
    assert Run.objects.get(pk=run.pk).state == State.RETRYING
    store(request, ValueError("boom"), states.FAILURE, traceback="Traceback: boom")
    assert Run.objects.get(pk=run.pk).state == State.FAILED


def test_a_run_cancelled_while_queued_stays_cancelled_and_its_body_is_skipped():
    run = make_run(state=State.CANCELLED)
    request = make_worker_request(run)
    store(request, {"pid": 1}, states.STARTED)
    assert worker_knows(request).skip
    assert Run.objects.get(pk=run.pk).state == State.CANCELLED


def test_a_finished_run_is_not_reopened_by_a_late_outcome():
    run = make_run(state=State.CANCELLED)
    store(make_worker_request(run), 9, states.SUCCESS)
    assert Run.objects.get(pk=run.pk).state == State.CANCELLED


def test_a_task_without_a_run_record_is_not_skipped():
    request = make_worker_request()
    store(request, {"pid": 1}, states.STARTED)
    assert not worker_knows(request).skip


def test_without_the_takeover_the_backend_leaves_the_run_alone():
    run = make_run(state=State.QUEUED)
    assert store(make_request(id=run.task_id), {"pid": 1}, states.STARTED) == 1
    assert Run.objects.get(pk=run.pk).state == State.QUEUED


def test_the_backend_takes_over_only_when_celery_stores_the_started_state():
    backend = celery_app.backend
    add.push_request(id="a", is_eager=False)
    try:
        assert backend.takes_over_run_updates(add)
        add.request.ignore_result = True
        assert not backend.takes_over_run_updates(add)
    finally:
        add.pop_request()
    add.push_request(id="b", is_eager=True)
    try:
        assert not backend.takes_over_run_updates(add)
    finally:
        add.pop_request()


def test_a_failure_stored_outside_the_task_keeps_the_run_start_time():
    run = make_run(state=State.STARTED, started_at=timezone.now())
    lost = make_request(id=run.task_id)  # the worker's view of a pool process it lost
    store(lost, ValueError("Worker exited prematurely"), states.FAILURE)
    assert TaskResult.objects.get(task_id=run.task_id).date_started == run.started_at


def test_a_duplicate_message_of_a_failed_run_leaves_its_stored_failure_alone():
    run = make_run(state=State.QUEUED)
    first = make_worker_request(run)
    store(first, {"pid": 1}, states.STARTED)
    store(first, ValueError("boom"), states.FAILURE, traceback="Traceback: boom")
    duplicate = make_worker_request(run)  # its worker died before the acknowledgement
    store(duplicate, {"pid": 2}, states.STARTED)
    assert worker_knows(duplicate).skip
    assert TaskResult.objects.get(task_id=run.task_id).status == states.FAILURE


def prepared_statements() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements")
        return cursor.fetchone()[0]


def run_one_task() -> None:
    request = make_worker_request(make_run(state=State.QUEUED))
    store(request, {"pid": 1}, states.STARTED)
    store(request, 9, states.SUCCESS)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL prepares")
def test_on_postgresql_each_statement_is_prepared_once_per_connection_and_reused():
    run_one_task()
    assert prepared_statements() == 2  # the run's start; the result with the run's outcome
    run_one_task()
    run_one_task()
    assert prepared_statements() == 2
