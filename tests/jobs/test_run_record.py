"""The run record: written before the message is sent, kept current by the worker."""

import pytest
from django.db import transaction

from apps.demo.tasks import add, countdown, flaky
from apps.jobs.catalog import get_job
from apps.jobs.dispatch import cancel_run, rerun, start_run
from apps.jobs.models import Run, Source, State
from tests.helpers import make_user, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def finished(run: Run) -> Run | None:
    run.refresh_from_db()
    return run if run.is_finished else None


def test_plain_delay_in_a_shell_is_recorded_as_a_shell_run(celery_worker):
    sent = add.delay(4, 5)
    assert sent.get(timeout=10, interval=0.02) == 9
    run = Run.objects.get(task_id=sent.id)
    assert run.source == Source.SHELL
    assert run.args == [4, 5]
    assert wait_for(lambda: finished(run)).state == State.SUCCEEDED


def test_the_run_record_exists_even_when_no_worker_is_up():
    sent = add.apply_async((1, 2), queue="no-worker-listens-here")
    run = Run.objects.get(task_id=sent.id)
    assert run.state == State.QUEUED
    assert run.queued_at is not None


def test_start_run_records_who_and_from_where_then_the_worker_finishes_it(celery_worker):
    alice = make_user("alice")
    run = start_run(get_job("apps.demo.tasks.add"), {"x": "4", "y": 5}, source=Source.WEB,
                    user=alice)  # fmt: skip
    assert (run.requested_by, run.source, run.parameters) == (alice, "web", {"x": 4, "y": 5})
    wait_for(lambda: finished(run))
    assert run.state == State.SUCCEEDED
    assert run.worker and run.wait_time is not None and run.run_time is not None


def test_dispatch_inside_a_transaction_waits_for_the_commit(celery_worker):
    with transaction.atomic():
        run = start_run(get_job("apps.demo.tasks.add"), {"x": 1, "y": 1}, source=Source.API)
        assert not Run.objects.filter(pk=run.pk, state=State.STARTED).exists()
    assert wait_for(lambda: finished(run)).state == State.SUCCEEDED


def test_a_repeated_idempotency_key_returns_the_first_run():
    job = get_job("apps.demo.tasks.add")
    first = start_run(job, {"x": 1, "y": 2}, source=Source.WEB, idempotency_key="k1")
    second = start_run(job, {"x": 1, "y": 2}, source=Source.WEB, idempotency_key="k1")
    assert first.pk == second.pk
    assert Run.objects.count() == 1


def test_progress_is_reported_then_the_countdown_succeeds(celery_worker):
    run = start_run(get_job("apps.demo.tasks.countdown"), {"seconds": 2}, source=Source.CLI)
    wait_for(lambda: Run.objects.filter(pk=run.pk, state=State.PROGRESS).exists())
    assert wait_for(lambda: finished(run), timeout=15).state == State.SUCCEEDED
    assert run.progress_done == run.progress_total == 2


def test_cancelling_a_running_countdown_stops_it(celery_worker):
    run = start_run(get_job("apps.demo.tasks.countdown"), {"seconds": 30}, source=Source.WEB)
    wait_for(lambda: Run.objects.filter(pk=run.pk, progress_done__gte=1).exists())
    cancel_run(run)
    assert wait_for(lambda: finished(run), timeout=10).state == State.CANCELLED
    assert run.progress_done < 30


def test_cancelling_a_queued_run_means_no_worker_ever_runs_it(celery_worker):
    with transaction.atomic():
        run = start_run(get_job("apps.demo.tasks.add"), {"x": 1, "y": 1}, source=Source.WEB)
        cancel_run(run)
    assert run.state == State.CANCELLED
    probe = countdown.delay(0)  # the worker is busy with whatever came before it
    probe.get(timeout=10, interval=0.02)
    run.refresh_from_db()
    assert run.state == State.CANCELLED and run.started_at is None


def test_flaky_job_retries_then_succeeds(celery_worker):
    sent = flaky.apply_async(kwargs={"failures": 1})
    assert "succeeded after 1" in sent.get(timeout=20, interval=0.05)
    run = wait_for(lambda: finished(Run.objects.get(task_id=sent.id)))
    assert run.state == State.SUCCEEDED and run.retries == 1


def test_run_again_links_the_new_run_to_the_old(celery_worker):
    first = start_run(get_job("apps.demo.tasks.add"), {"x": 2, "y": 3}, source=Source.WEB)
    second = rerun(first, source=Source.WEB)
    assert second.rerun_of == first and second.parameters == first.parameters
    assert wait_for(lambda: finished(second)).state == State.SUCCEEDED
