"""The pipeline's run page draws its steps; /runs/ shows the pipeline as one row."""

import json

import pytest
from django_celery_results.models import TaskResult

from apps.demo.pipelines import sum_of_squares
from apps.jobs.catalog import get_job
from apps.jobs.models import Run, Source, State
from apps.pipelines import running
from tests.api.helpers import token_client
from tests.helpers import make_superuser, make_user

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


def make_pipeline_run(task=sum_of_squares, **params) -> Run:
    """A pipeline's run with its steps recorded, as its task records them (no worker)."""
    job = get_job(task.name)
    run = Run.objects.create(task_id=f"p-{Run.objects.count()}", job_name=job.name,
                             parameters=params, source=Source.WEB, state=State.STARTED,
                             queued_at=timezone_now())  # fmt: skip
    pipeline = running.get_pipeline(job.name)
    running.record_steps(run, pipeline.plan(running.typed_values(pipeline, params)), {})
    return run


def timezone_now():
    from django.utils import timezone

    return timezone.now()


def test_runs_shows_a_pipeline_as_one_row_and_its_steps_only_when_asked(client):
    client.force_login(make_superuser())
    run = make_pipeline_run(count=3)
    page = client.get("/runs/").context["page"]
    assert [r.pk for r in page.runs] == [run.pk]
    steps = client.get("/runs/?source=pipeline").context["page"]
    assert len(steps.runs) == 5


def test_the_pipeline_page_draws_each_step_with_its_state_and_polls_while_running(client):
    client.force_login(make_superuser())
    run = make_pipeline_run(count=3)
    run.steps.filter(step="square[1]").update(state=State.FAILED)
    running.fail(run.pk, "square[1]")
    body = client.get(run.get_absolute_url(), **HTMX).content.decode()
    assert 'id="pipeline-state">failed at step square[1]' in body
    assert 'data-step="square[1]" data-state="failed"' in body
    assert 'data-step="total" data-state="skipped"' in body
    assert "hx-trigger" not in body  # finished: the polling stops
    assert "retries from the failed step" in body


def test_a_pipeline_cancelled_while_a_step_runs_keeps_polling_until_its_steps_end(client):
    client.force_login(make_superuser())
    run = make_pipeline_run(count=2)
    run.steps.filter(step="square[0]").update(state=State.STARTED)
    run.steps.exclude(step="square[0]").update(state=State.CANCELLED)
    Run.objects.filter(pk=run.pk).update(state=State.CANCELLED)
    body = client.get(run.get_absolute_url(), **HTMX).content.decode()
    assert 'id="pipeline-steps-moving"' in body and 'hx-target="#run-live"' in body
    run.steps.filter(step="square[0]").update(state=State.SUCCEEDED)
    body = client.get(run.get_absolute_url(), **HTMX).content.decode()
    assert 'data-step="square[0]" data-state="succeeded"' in body
    assert "hx-trigger" not in body  # every step ended: the polling stops


def test_a_step_page_links_to_its_pipeline(client):
    client.force_login(make_superuser())
    run = make_pipeline_run(count=1)
    step = run.steps.get(step="total")
    body = client.get(step.get_absolute_url()).content.decode()
    assert f'href="/runs/{run.pk}/">pipeline run {run.pk}' in body


def test_a_user_who_may_not_run_the_steps_sees_the_pipeline_they_started(client):
    alice = make_user("alice", jobs=(sum_of_squares.name,))
    client.force_login(alice)
    run = make_pipeline_run(count=2)
    Run.objects.filter(pk=run.pk).update(requested_by=alice)
    assert client.get(run.get_absolute_url()).status_code == 200


def test_a_pipeline_row_whose_parameters_no_plan_accepts_is_drawn_as_a_list(client):
    client.force_login(make_superuser())
    run = make_pipeline_run(count=2)
    Run.objects.filter(pk=run.pk).update(parameters={"count": "many", "pause": [None]})
    body = client.get(run.get_absolute_url(), **HTMX).content.decode()
    assert 'data-step="square[1]"' in body and 'data-step="double"' in body


def test_a_running_pipeline_is_not_stuck_when_the_worker_that_started_it_is_gone():
    from apps.jobs import sweeper

    run = make_pipeline_run(count=1)
    Run.objects.filter(pk=run.pk).update(worker="gone@host")
    lone = Run.objects.create(task_id="lone", job_name="apps.demo.tasks.add", worker="gone@host",
                              source=Source.WEB, state=State.STARTED,
                              queued_at=timezone_now())  # fmt: skip
    assert list(sweeper.stuck_runs(alive_workers=set())) == [lone]


def test_the_sweep_fails_a_pipeline_whose_step_failed_outside_its_task():
    from apps.jobs.tasks import sweep

    run = make_pipeline_run(count=2)
    # As the jobs sweeper's reconcile leaves a step a hard time limit killed: no postrun.
    run.steps.filter(step="square[0]").update(state=State.FAILED)
    sweep()
    run.refresh_from_db()
    assert (run.state, run.note) == (State.FAILED, "Failed at step square[0].")
    assert set(run.steps.exclude(step="square[0]").values_list("state", flat=True)) == {
        State.SKIPPED
    }


def test_the_sweep_ends_a_pipeline_whose_steps_all_succeeded_without_a_word():
    from apps.jobs.tasks import sweep

    run = make_pipeline_run(count=2)
    run.steps.update(state=State.SUCCEEDED)
    sweep()
    run.refresh_from_db()
    assert run.state == State.SUCCEEDED


def succeeded_with_results(run: Run) -> Run:
    """Every step succeeded, each with a result only its readers may see."""
    run.steps.update(state=State.SUCCEEDED, finished_at=timezone_now(), worker="w1@host")
    for step in run.steps.all():
        TaskResult.objects.create(task_id=step.task_id, task_name=step.job_name,
                                  status="SUCCESS", result=json.dumps(f"result of {step.step}"),
                                  content_type="application/json")  # fmt: skip
    return run


def roots_pipeline(count: int = 2) -> Run:
    """Started by root; frank may run the pipeline but not the jobs of its steps."""
    run = succeeded_with_results(make_pipeline_run(count=count))
    Run.objects.filter(pk=run.pk).update(requested_by=make_superuser())
    run.refresh_from_db()
    run.steps.update(requested_by=run.requested_by)  # as the pipeline's task records them
    return run


def frank():
    return make_user("frank", jobs=(sum_of_squares.name,))


def test_the_graph_hides_the_steps_a_viewer_may_not_see_showing_name_and_state(client):
    run = roots_pipeline()
    step = run.steps.get(step="square[1]")
    client.force_login(frank())
    assert client.get(step.get_absolute_url()).status_code == 403
    page = client.get(run.get_absolute_url())
    body = page.content.decode()
    assert page.status_code == 200
    assert 'data-step="square[1]" data-state="succeeded" data-hidden' in body
    assert "hidden: you may not see this step" in body
    assert "result of" not in body
    assert f'href="{step.get_absolute_url()}"' not in body
    assert "apps.demo.tasks.square" not in body and "w1@host" not in body


def test_the_graph_shows_each_step_s_result_to_whom_may_see_its_run(client):
    run = roots_pipeline()
    step = run.steps.get(step="square[1]")
    client.force_login(run.requested_by)
    body = client.get(run.get_absolute_url(), **HTMX).content.decode()
    assert "result of square[1]" in body and "result of double" in body
    assert f'href="{step.get_absolute_url()}"' in body and "data-hidden" not in body


def test_the_user_who_started_the_pipeline_sees_its_steps_results(client):
    alice = make_user("alice", jobs=(sum_of_squares.name,))
    run = succeeded_with_results(make_pipeline_run(count=1))
    Run.objects.filter(pk=run.pk).update(requested_by=alice)
    run.steps.update(requested_by=alice)  # as the pipeline's task records them
    client.force_login(alice)
    body = client.get(run.get_absolute_url(), **HTMX).content.decode()
    assert "result of total" in body and "data-hidden" not in body


def test_the_api_lists_the_steps_a_reader_may_not_see_by_name_and_state_only():
    run = roots_pipeline(count=1)
    step = run.steps.get(step="total")
    api = token_client(frank())
    assert api.get(f"/api/runs/{step.pk}").status_code == 404
    steps = api.get(f"/api/runs/{run.pk}").json()["steps"]
    assert {"id": None, "step": "total", "job": "", "state": "succeeded", "started_at": None,
            "finished_at": None, "hidden": True} in steps  # fmt: skip
    assert all(s["hidden"] and s["id"] is None for s in steps)
    seen = token_client(run.requested_by).get(f"/api/runs/{run.pk}").json()["steps"]
    assert {"id": step.pk, "step": "total", "job": step.job_name, "hidden": False}.items() <= {
        s["step"]: s for s in seen
    }["total"].items()
