"""Celery's getting-started walkthrough, on Switchyard, through a real worker."""

import time

import pytest
from celery.result import AsyncResult
from django.urls import reverse
from django_celery_beat.models import IntervalSchedule, PeriodicTask
from django_celery_results.models import TaskResult

from apps.demo.tasks import add
from apps.devstack import processes
from project import celery_app

pytestmark = pytest.mark.django_db(transaction=True)


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {predicate}")


def test_add_delay_returns_nine(celery_worker):
    assert add.delay(4, 5).get(timeout=10, interval=0.02) == 9


def test_async_result_reads_the_stored_result_back(celery_worker):
    sent = add.delay(4, 5)
    sent.get(timeout=10, interval=0.02)
    assert AsyncResult(sent.id, app=celery_app).get(timeout=10, interval=0.02) == 9


def test_result_is_stored_with_name_args_worker_and_times(celery_worker):
    sent = add.delay(4, 5)
    sent.get(timeout=10, interval=0.02)
    stored = TaskResult.objects.get(task_id=sent.id)
    assert stored.status == "SUCCESS"
    assert stored.task_name == "apps.demo.tasks.add"
    assert stored.task_args == '"(4, 5)"' or "4, 5" in stored.task_args
    assert stored.worker
    assert stored.date_started is not None
    assert stored.date_done >= stored.date_started


def test_results_admin_lists_the_result_with_its_task_name(celery_worker, admin_client):
    sent = add.delay(4, 5)
    sent.get(timeout=10, interval=0.02)
    changelist = admin_client.get(reverse("admin:django_celery_results_taskresult_changelist"))
    assert changelist.status_code == 200
    assert sent.id in changelist.content.decode()
    pk = TaskResult.objects.get(task_id=sent.id).pk
    page = admin_client.get(reverse("admin:django_celery_results_taskresult_change", args=[pk]))
    assert "apps.demo.tasks.add" in page.content.decode()


@pytest.mark.slow
def test_beat_stores_the_walkthrough_schedules_and_runs_an_admin_schedule(
    celery_worker, start_process, admin_client
):
    every_second, _ = IntervalSchedule.objects.get_or_create(every=1, period="seconds")
    PeriodicTask.objects.create(
        name="add 4 and 5", task="apps.demo.tasks.add", interval=every_second, args="[4, 5]"
    )
    start_process(processes.beat_command("--max-interval=1"))

    wait_for(lambda: PeriodicTask.objects.filter(name="run every 1 minute").exists())
    monday = wait_for(lambda: PeriodicTask.objects.filter(name="add every Monday morning").first())
    assert (monday.crontab.hour, monday.crontab.minute) == ("7", "30")
    result = wait_for(
        lambda: TaskResult.objects.filter(periodic_task_name="add 4 and 5", status="SUCCESS")
        .order_by("date_done")
        .first()
    )
    assert result.result == "9"
    listing = admin_client.get(reverse("admin:django_celery_beat_periodictask_changelist"))
    assert "run every 1 minute" in listing.content.decode()
