"""Tasks API `@task`s enqueued through Switchyard's backend and run by a real worker."""

import threading
from datetime import timedelta

import pytest
from celery import signals as celery_signals
from django.db import transaction
from django.http import JsonResponse
from django.urls import path
from django.utils import timezone
from django_tasks import TaskResultStatus
from django_tasks.exceptions import TaskResultDoesNotExist
from django_tasks.signals import task_enqueued, task_finished, task_started

from apps.demo.tasks_api.tasks import divide, echo_later, greet, tidy_up, whoami
from apps.djtasks.backend import CeleryBackend
from apps.jobs.dispatch import record_and_send
from apps.jobs.models import Run, Source, State
from tests.helpers import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


class Published:
    """Task ids Celery published (after_task_publish), in this process."""

    def __init__(self):
        self.ids: list[str] = []

    def __call__(self, headers=None, **kwargs):
        self.ids.append((headers or {}).get("id"))


@pytest.fixture
def published():
    seen = Published()
    celery_signals.after_task_publish.connect(seen, weak=False)
    yield seen
    celery_signals.after_task_publish.disconnect(seen)


# A view of a project's own, enqueueing inside its transaction -------------------------

_seen_in_view: dict = {}


def greet_view(request):
    with transaction.atomic():
        result = greet.enqueue(request.GET["name"])
        _seen_in_view["run_state"] = Run.objects.get(task_id=result.id).state
        _seen_in_view["published"] = list(_seen_in_view["recorder"].ids)
    _seen_in_view["published_after_commit"] = list(_seen_in_view["recorder"].ids)
    return JsonResponse({"id": result.id, "status": result.status})


urlpatterns = [path("greet/", greet_view)]


def finished(task, result_id: str):
    result = task.get_result(result_id)
    return result if result.is_finished else None


@pytest.mark.urls(__name__)
def test_a_task_enqueued_in_a_view_is_published_on_commit_and_its_result_read_back(
    client, published, celery_worker
):
    _seen_in_view.clear()
    _seen_in_view["recorder"] = published
    response = client.get("/greet/", {"name": "Ada"})
    result_id = response.json()["id"]
    assert response.json()["status"] == TaskResultStatus.READY
    assert _seen_in_view["run_state"] == State.QUEUED  # written queued, published on commit
    assert _seen_in_view["published"] == []
    assert _seen_in_view["published_after_commit"] == [result_id]
    result = wait_for(lambda: finished(greet, result_id))
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == "Hello, Ada!"
    assert result.enqueued_at <= result.started_at <= result.finished_at
    run = Run.objects.get(task_id=result_id)
    assert run.worker and result.worker_ids == [run.worker] and result.attempts == 1
    assert result.args == ["Ada"] and result.kwargs == {}
    assert (run.job_name, run.source, run.state) == (greet.module_path, Source.TASKS_API,
                                                     State.SUCCEEDED)  # fmt: skip


def test_a_task_enqueued_in_a_transaction_that_rolls_back_is_never_published(published):
    with pytest.raises(RuntimeError), transaction.atomic():
        result = greet.enqueue("Ada")
        assert Run.objects.get(task_id=result.id).state == State.QUEUED
        raise RuntimeError("the view failed")
    assert published.ids == []
    assert not Run.objects.exists()


def test_refresh_follows_the_run_until_it_has_finished(celery_worker):
    result = greet.enqueue("Grace", shout=True)
    assert result.status == TaskResultStatus.READY
    with pytest.raises(ValueError, match="not finished"):
        result.return_value  # noqa: B018

    def refreshed():
        result.refresh()
        return result.is_finished

    wait_for(refreshed)
    assert result.return_value == "HELLO, GRACE!"


def recorded_around_enqueue(task, *args, **kwargs) -> str:
    """A run recorded and sent as enqueue did before it checked arguments (code that goes
    around enqueue, a message from elsewhere): only the worker's look stands in its way."""
    run = record_and_send(task.module_path, kwargs, args=list(args), source=Source.TASKS_API)
    return run.task_id


@pytest.mark.parametrize(
    ("task", "args", "kwargs", "error"),
    [
        (echo_later, ["x"], {"seconds": 1e308},
         "ValueError: seconds: Ensure this value is less than or equal to 60."),
        (echo_later, ["x", -1], {},
         "ValueError: seconds: Ensure this value is greater than or equal to 0."),
        (tidy_up, [-5], {},
         "ValueError: days: Ensure this value is greater than or equal to 1."),
        (greet, ["a", "b", "c"], {}, "TypeError: too many positional arguments"),
    ],
    ids=["a float by name above its bound", "a positional float below its bound",
         "a positional number below its bound", "too many positional arguments"],
)  # fmt: skip
def test_the_worker_refuses_arguments_outside_the_tasks_parameters_instead_of_running_it(
    celery_worker, task, args, kwargs, error
):  # fmt: skip
    result_id = recorded_around_enqueue(task, *args, **kwargs)
    failed = wait_for(lambda: finished(task, result_id), timeout=10)
    assert failed.status == TaskResultStatus.FAILED
    assert error in failed.errors[0].traceback
    assert failed.errors[0].traceback.count("apps/demo/tasks_api/tasks.py") == 0  # never ran


def test_positional_arguments_within_their_bounds_run_on_the_worker(celery_worker):
    result = tidy_up.enqueue(7)
    done = wait_for(lambda: finished(tidy_up, result.id), timeout=10)
    assert (done.status, done.return_value) == (TaskResultStatus.SUCCESSFUL, "tidied up 7 days")


def test_a_failed_task_has_its_exception_class_and_traceback(celery_worker):
    result = divide.enqueue(1, 0)
    failed = wait_for(lambda: finished(divide, result.id))
    assert failed.status == TaskResultStatus.FAILED
    (error,) = failed.errors
    assert error.exception_class_path == "builtins.ZeroDivisionError"
    assert error.exception_class is ZeroDivisionError
    assert "return x / y" in error.traceback
    assert "ZeroDivisionError: float division by zero" in error.traceback
    with pytest.raises(ValueError, match="failed"):
        failed.return_value  # noqa: B018
    assert Run.objects.get(task_id=result.id).state == State.FAILED


def test_a_task_that_takes_context_gets_its_attempt_and_its_result(celery_worker):
    result = whoami.enqueue(note="hi")
    done = wait_for(lambda: finished(whoami, result.id))
    assert done.return_value == {
        "id": result.id,
        "attempt": 1,
        "enqueued_at": result.enqueued_at.isoformat(),
        "note": "hi",
    }


def test_run_after_holds_the_task_until_then(celery_worker):
    not_before = timezone.now() + timedelta(seconds=2)
    result = greet.using(run_after=not_before).enqueue("Later")
    done = wait_for(lambda: finished(greet, result.id))
    assert done.return_value == "Hello, Later!"
    assert done.started_at >= not_before


def test_an_unknown_result_id_does_not_exist():
    with pytest.raises(TaskResultDoesNotExist):
        greet.get_result("no-such-id")


class Signals:
    """Each task signal as it arrives: (status, thread name, sender class name)."""

    def __init__(self):
        self.sent: dict[str, tuple[str, str, str]] = {}

    def receiver(self, name: str):
        def receive(sender, task_result, **kwargs):
            self.sent[name] = (task_result.status, threading.current_thread().name,
                               sender.__name__)  # fmt: skip

        return receive


def test_the_task_signals_fire_enqueued_here_and_started_and_finished_on_the_worker(
    celery_worker,
):
    seen = Signals()
    receivers = [(task_enqueued, seen.receiver("enqueued")),
                 (task_started, seen.receiver("started")),
                 (task_finished, seen.receiver("finished"))]  # fmt: skip
    for signal, receiver in receivers:
        signal.connect(receiver)
    try:
        result = divide.enqueue(6, 3)
        wait_for(lambda: len(seen.sent) == 3)
    finally:
        for signal, receiver in receivers:
            signal.disconnect(receiver)
    here, backend = threading.current_thread().name, CeleryBackend.__name__
    assert seen.sent["enqueued"] == (TaskResultStatus.READY, here, backend)
    status, thread, sender = seen.sent["started"]
    assert (status, sender) == (TaskResultStatus.RUNNING, backend) and thread != here
    status, thread, sender = seen.sent["finished"]
    assert (status, sender) == (TaskResultStatus.SUCCESSFUL, backend) and thread != here
    assert wait_for(lambda: finished(divide, result.id)).return_value == 2.0


def test_a_failure_is_announced_by_task_finished_with_its_error(celery_worker):
    errors = []

    def receive(sender, task_result, **kwargs):
        classes = [e.exception_class_path for e in task_result.errors]
        errors.append((classes, threading.current_thread().name))

    task_finished.connect(receive)
    try:
        divide.enqueue(1, 0)
        wait_for(lambda: errors)
    finally:
        task_finished.disconnect(receive)
    ((error_classes, thread),) = errors
    assert error_classes == ["builtins.ZeroDivisionError"]
    assert thread != threading.current_thread().name  # on the worker
