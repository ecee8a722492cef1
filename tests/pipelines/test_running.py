"""Pipelines end to end: the real worker and Redis run each step as a run of its own."""

import pytest
from django_celery_results.models import ChordCounter

from apps.jobs.catalog import get_job
from apps.jobs.dispatch import cancel_run, rerun, start_run
from apps.jobs.models import Run, Source, State
from tests.helpers import make_superuser, wait_for

from . import pipelines_for_tests as P

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow,
              pytest.mark.postgres_pass]  # fmt: skip


def root():
    from django.contrib.auth.models import User

    return User.objects.filter(username="root").first() or make_superuser()


def start_pipeline(task, **params) -> Run:
    return start_run(get_job(task.name), params, source=Source.API, user=root())


def finished(run: Run) -> Run | None:
    run.refresh_from_db()
    return run if run.is_finished else None


def wait_finished(run: Run, timeout: float = 60) -> Run:
    return wait_for(lambda: finished(run), timeout=timeout)


def steps_of(run: Run) -> dict[str, Run]:
    return {step.step: step for step in run.steps.all()}


def result_of(run: Run):
    from apps.jobs.presenting import describe

    return describe(run).result


def test_a_chain_passes_each_steps_result_to_the_next(celery_worker):
    run = wait_finished(start_pipeline(P.chain_of_adds, start=5))
    steps = steps_of(run)
    assert run.state == State.SUCCEEDED
    assert {s.state for s in steps.values()} == {State.SUCCEEDED}
    assert {s.source for s in steps.values()} == {Source.PIPELINE}
    assert steps["second"].parameters == {"x": 6, "y": 10}
    assert steps["third"].parameters == {"x": 16, "y": 6}
    assert result_of(steps["third"]) == 22
    assert result_of(run) == 22
    # (Celery sends a chain's next task just before it stores the result of the one that
    # ended: the next one waits for that result, so its start may come a moment first.)
    assert steps["first"].started_at <= steps["second"].started_at


def test_a_group_runs_its_steps_and_the_pipeline_ends_with_their_results(celery_worker):
    run = wait_finished(start_pipeline(P.parallel_squares, a=4, b=5))
    assert run.state == State.SUCCEEDED
    assert {n: s.state for n, s in steps_of(run).items()} == {
        "a": State.SUCCEEDED, "b": State.SUCCEEDED,
    }  # fmt: skip
    assert run.progress_done == run.progress_total == 2


def test_a_chord_joins_a_fan_out_and_the_join_reads_every_result(celery_worker):
    from apps.demo.pipelines import sum_of_squares

    run = wait_finished(start_pipeline(sum_of_squares, count=6))
    steps = steps_of(run)
    assert run.state == State.SUCCEEDED, run.note
    assert steps["total"].parameters == {"numbers": [0, 1, 4, 9, 16, 25]}
    assert result_of(steps["double"]) == 110
    assert not ChordCounter.objects.exists()


def test_a_step_failing_after_its_retries_fails_the_pipeline_and_skips_the_rest(celery_worker):
    run = wait_finished(start_pipeline(P.failing_chord))
    steps = steps_of(run)
    assert run.state == State.FAILED
    assert run.note == "Failed at step bad."
    assert steps["bad"].state == State.FAILED and steps["bad"].retries == 2
    assert steps["ok1"].state == steps["ok2"].state == State.SUCCEEDED
    assert steps["join"].state == steps["after"].state == State.SKIPPED
    # Nothing is left waiting on the chord: every step has an outcome.
    assert all(step.is_finished for step in steps.values())


def test_run_again_after_a_failure_retries_from_the_failed_step_reusing_results(
    celery_worker, tmp_path
):
    marker = tmp_path / "broken"
    marker.touch()
    first = wait_finished(start_pipeline(P.mended, marker=str(marker)))
    assert first.state == State.FAILED and first.note == "Failed at step check."
    marker.unlink()
    second = wait_finished(rerun(first, source=Source.WEB, user=root()))
    old, new = steps_of(first), steps_of(second)
    assert second.state == State.SUCCEEDED, second.note
    for name in ("square[0]", "square[1]", "square[2]", "total"):
        assert new[name].note == f"Result reused from run {old[name].pk}."
        assert new[name].started_at == old[name].started_at  # not run again
    assert new["check"].deliveries == 1 and new["after"].parameters == {"x": 5, "y": 100}
    assert result_of(second) == 105


def test_cancel_stops_running_steps_and_cancels_those_not_started(celery_worker):
    run = start_pipeline(P.slow, seconds=30)
    wait_for(lambda: run.steps.filter(state=State.PROGRESS).count() == 2, timeout=30)
    run.refresh_from_db()
    assert cancel_run(run, by=root())
    wait_for(lambda: not run.steps.exclude(state__in=[State.CANCELLED]).exists(), timeout=30)
    run.refresh_from_db()
    assert run.state == State.CANCELLED
    assert steps_of(run)["after"].note.startswith("Cancelled with its pipeline")


def test_cancelling_one_running_step_cancels_its_pipeline(celery_worker):
    run = start_pipeline(P.slow, seconds=30)
    wait_for(lambda: run.steps.filter(state=State.PROGRESS).count() == 2, timeout=30)
    assert cancel_run(steps_of(run)["wait1"], by=root())
    run = wait_finished(run, timeout=30)
    assert (run.state, run.note) == (State.CANCELLED, "Cancelled: step wait1 was cancelled.")
    wait_for(lambda: steps_of(run)["wait2"].state == State.CANCELLED, timeout=30)
    assert steps_of(run)["after"].state == State.CANCELLED
