"""The HTTP check job through the real worker: pass, fail (so alerts fire), retry."""

import json

import pytest
from django_celery_results.models import TaskResult

from apps.checks.http import CheckUnreachable
from apps.checks.tasks import http_check
from apps.devstack.processes import free_port
from apps.jobs.catalog import get_job
from apps.jobs.dispatch import cancel_run, start_run
from apps.jobs.models import Run, Source, State
from tests.helpers import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def start(params: dict) -> Run:
    return start_run(get_job("apps.checks.tasks.http_check"), params, source=Source.API)


def finished(run: Run) -> Run | None:
    run.refresh_from_db()
    return run if run.is_finished else None


def stored_result(run: Run) -> dict:
    stored = wait_for(lambda: TaskResult.objects.filter(task_id=run.task_id).first())
    return json.loads(stored.result)


def test_a_passing_check_succeeds_with_its_measurements(celery_worker, http_server):
    run = start({"url": f"{http_server}/ok", "contains": "hello"})
    assert wait_for(lambda: finished(run)).state == State.SUCCEEDED
    result = stored_result(run)
    assert result["status"] == 200 and result["contained"] is True


def test_a_wrong_status_fails_the_run(celery_worker, http_server):
    run = start({"url": f"{http_server}/server-error", "expect_status": "200"})
    assert wait_for(lambda: finished(run)).state == State.FAILED
    assert "status 500, expected 200" in stored_result(run)["exc_message"][0]


def test_a_non_http_url_fails_the_run_without_retrying(celery_worker):
    run = start({"url": "file:///etc/passwd"})
    assert wait_for(lambda: finished(run)).state == State.FAILED
    assert run.retries == 0


def test_an_unreachable_url_is_retried_with_a_bound(celery_worker):
    assert http_check.autoretry_for == (CheckUnreachable,)
    assert http_check.max_retries == 3
    run = start({"url": f"http://127.0.0.1:{free_port()}/", "timeout_s": "1"})
    wait_for(lambda: Run.objects.filter(pk=run.pk, state=State.RETRYING).exists())
    cancel_run(run)
