"""The HTTP check job through the real worker: pass, fail (so alerts fire), retry."""

import json

import pytest
from django_celery_results.models import TaskResult

from apps.checks.http import CheckUnreachable
from apps.checks.tasks import http_check
from apps.devstack.processes import free_port
from apps.jobs.catalog import ParameterError, get_job
from apps.jobs.dispatch import cancel_run, start_run
from apps.jobs.models import Run, Source, State
from tests.checks.conftest import allowed_hosts
from tests.helpers import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("allow_loopback")]


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


def test_a_non_http_url_is_refused_at_submission():
    with pytest.raises(ParameterError, match="only http:// and https:// URLs"):
        start({"url": "file:///etc/passwd"})
    assert not Run.objects.exists()


def test_a_non_http_url_sent_past_the_catalog_fails_the_run_without_retrying(celery_worker):
    sent = http_check.apply_async(kwargs={"url": "file:///etc/passwd"})
    run = wait_for(lambda: Run.objects.filter(task_id=sent.id, state=State.FAILED).first())
    assert run.retries == 0


def test_an_internal_host_name_fails_the_run_at_connect_time_without_retrying(
    celery_worker, local_server, settings
):
    """`localhost` passes submission (a name), and is refused once it resolves."""
    settings.HTTP_CHECK_ALLOWED_HOSTS = allowed_hosts()
    local_server.seen.clear()
    run = start({"url": f"http://localhost:{local_server.port}/secret", "contains": "42"})
    assert wait_for(lambda: finished(run)).state == State.FAILED
    result = stored_result(run)
    assert result["exc_type"] == "AddressRefused"
    assert "localhost is a loopback address (127.0.0.1)" in result["exc_message"][0]
    assert run.retries == 0
    assert local_server.seen == []


def test_an_unreachable_url_is_retried_with_a_bound(celery_worker):
    assert http_check.autoretry_for == (CheckUnreachable,)
    assert http_check.max_retries == 3
    run = start({"url": f"http://127.0.0.1:{free_port()}/", "timeout_s": "1"})
    wait_for(lambda: Run.objects.filter(pk=run.pk, state=State.RETRYING).exists())
    cancel_run(run)
