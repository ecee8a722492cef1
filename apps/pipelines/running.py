"""A pipeline run from start to end: its steps recorded, its canvas sent, its outcome.

- `start_from_task`: the pipeline's own task (sent like any job's: web, API, CLI, beat)
  records every step as a run (`waiting`, source "pipeline", linked to the pipeline's
  run, with a task id derived from the pipeline's), then sends one Celery canvas: a chain
  of the stages, each stage of several steps a group, joined by a chord. Run again after
  a failure or a cancel, it reuses the steps that succeeded (their stored results).
- `step_ended` (the worker's postrun signal, apps/pipelines/signals.py): a step that
  failed after its retries fails the pipeline at that step and skips the steps that can
  no longer run; the last step to succeed ends the pipeline succeeded.
- `cancel` (filled into `dispatch.cancellers`): the steps not started are cancelled and
  revoked, the running ones asked to stop, the pipeline run cancelled.
"""

import logging
import uuid

from celery import chain, chord, current_app, current_task, group
from celery.exceptions import Ignore
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from django_celery_results.models import TaskResult

from apps.jobs import dispatch, inspect, secrets
from apps.jobs.models import NOT_STARTED, Run, Source, State

from .declare import Pipeline, Result, Stage, Step, get_pipeline

log = logging.getLogger(__name__)
BATCH = 500
HEADER = "switchyard_pipeline"  # on each step's message: its pipeline run's id
UNFINISHED = (*NOT_STARTED, State.STARTED, State.PROGRESS, State.RETRYING)


def start_from_task(pipeline: Pipeline, values: dict) -> None:
    """The body of a pipeline's task: start it, then leave its run going (Ignore: no
    outcome is stored; the steps end it)."""
    run = Run.objects.get(task_id=current_task.request.id)
    start(pipeline, run, values)
    raise Ignore()


def start(pipeline: Pipeline, run: Run, values: dict) -> None:
    stages = pipeline.plan(values)
    if already_sent(run):
        log.warning("pipeline run %s was started before; its steps are not sent again", run.pk)
        return
    reused = reusable_steps(run, pipeline)
    steps = record_steps(run, stages, reused)
    total = len(steps)
    done = sum(1 for s in steps if s.state == State.SUCCEEDED)
    Run.objects.filter(pk=run.pk).report_progress(done, total, progress_text(done, total))
    if Run.objects.filter(pk=run.pk, cancel_requested_at__isnull=False).exists():
        cancel(run)  # cancelled while its steps were being recorded
        return
    canvas = build_canvas(run, stages, {s.step: s for s in steps})
    if canvas is None:
        settle(run.pk)
    else:
        canvas.apply_async()


def already_sent(run: Run) -> bool:
    """The pipeline's task delivered again (its worker lost after it sent the canvas): a
    step has left `waiting`, so the canvas went out and is not sent twice. (Lost before
    any step left `waiting`, the canvas is sent again; a step then delivered twice runs
    once if the first delivery has finished.)"""
    return (
        run.steps.exclude(state=State.WAITING).exclude(note__startswith="Result reused").exists()
    )


def step_task_id(run: Run, step_name: str) -> str:
    """The same for the same pipeline run and step: a pipeline task delivered again
    (its worker lost) records and sends the same steps, which then run once."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"switchyard:{run.task_id}:{step_name}"))


def reusable_steps(run: Run, pipeline: Pipeline) -> dict[str, Run]:
    """Run again after a failure or a cancel: the steps that succeeded, by name."""
    previous = run.rerun_of
    if previous is None or previous.job_name != pipeline.name:
        return {}
    if previous.state not in (State.FAILED, State.CANCELLED):
        return {}
    done = previous.steps.filter(state=State.SUCCEEDED)
    return {s.step: s for s in done.only("pk", "task_id", "step", "started_at",
                                          "finished_at", "worker", "parameters")}  # fmt: skip


def record_steps(run: Run, stages: list[Stage], reused: dict[str, Run]) -> list[Run]:
    now = timezone.now()
    steps = [
        step_run(run, step, reused.get(step.name), now) for stage in stages for step in stage.steps
    ]
    with transaction.atomic():
        Run.objects.bulk_create(steps, ignore_conflicts=True, batch_size=500)
        copy_results(steps, reused)
    return steps


def step_kwargs(step: Step) -> dict:
    """What the step's message carries: the plan's values (secrets in clear), each
    `Result` as its reference (apps/pipelines/inputs.py fills it in the worker)."""
    return {k: v.as_json() if isinstance(v, Result) else v for k, v in step.params.items()}


def step_run(run: Run, step: Step, old: Run | None, now) -> Run:
    """The step's run record: its parameters masked as any run's (secrets.py); the clear
    values travel only in its message (build_canvas)."""
    params = secrets.masked(step.job_name, step_kwargs(step))
    new = Run(
        task_id=step_task_id(run, step.name), job_name=step.job_name, parameters=params,
        source=Source.PIPELINE, requested_by_id=run.requested_by_id,
        requested_by_label=run.requested_by_label, schedule_name=run.schedule_name,
        state=State.WAITING, queued_at=now, pipeline=run, step=step.name,
    )  # fmt: skip
    if old is not None:
        new.state, new.worker = State.SUCCEEDED, old.worker
        new.parameters = secrets.masked(step.job_name, old.parameters)  # one recorded in clear
        new.started_at, new.finished_at = old.started_at, old.finished_at
        new.note = f"Result reused from run {old.pk}."
    return new


def copy_results(steps: list[Run], reused: dict[str, Run]) -> None:
    """A reused step's stored result, under its new run's task id."""
    if not reused:
        return
    new_ids = {reused[s.step].task_id: s.task_id for s in steps if s.step in reused}
    copies = []
    for old in TaskResult.objects.filter(task_id__in=new_ids):
        old.pk, old.task_id = None, new_ids[old.task_id]
        copies.append(old)
    TaskResult.objects.bulk_create(copies, ignore_conflicts=True, batch_size=500)


def build_canvas(run: Run, stages: list[Stage], steps: dict[str, Run]):
    """Chain of the stages still to run; a stage of several steps followed by another is
    a chord (the join waits for all of them). Every signature is immutable: a step's
    parameters come from the plan (secrets in clear: the step's record holds the mask),
    never from Celery passing a result along."""
    parts = []
    for stage in stages:
        members = [signature(run, steps[s.name], step_kwargs(s)) for s in stage.steps
                   if steps[s.name].state != State.SUCCEEDED]  # fmt: skip
        if members:
            parts.append(members)
    tail = None
    for members in reversed(parts):
        if tail is None:
            tail = members[0] if len(members) == 1 else group(members)
        elif len(members) == 1:
            tail = chain(members[0], tail)
        else:
            tail = chord(group(members), tail)
    return tail


def signature(run: Run, step: Run, kwargs: dict):
    sig = current_app.signature(step.job_name, kwargs=kwargs, immutable=True)
    return sig.set(task_id=step.task_id, headers={HEADER: run.pk})


# How it ends -----------------------------------------------------------------------------


def step_ended(pipeline_id: int, step_task_id: str, succeeded: bool) -> None:
    if succeeded:
        settle(pipeline_id)
        return
    step = Run.objects.filter(task_id=step_task_id).only("step", "state").first()
    if step is not None and step.state == State.FAILED:
        fail(pipeline_id, step.step)
    elif step is not None and step.state == State.CANCELLED:
        step_cancelled(pipeline_id, step.step)
    # else: skipped (another step failed first), or a duplicate of a finished step


def step_cancelled(pipeline_id: int, step_name: str) -> None:
    """A step cancelled on its own (its run's Cancel): the steps after it can never run,
    so the whole pipeline is cancelled."""
    run = Run.objects.filter(pk=pipeline_id).first()
    if run is not None and not run.is_finished and run.cancel_requested_at is None:
        cancel(run, note=f"Cancelled: step {step_name} was cancelled.")


def fail(pipeline_id: int, step_name: str) -> None:
    """Failed at this step: the pipeline fails and the steps Celery has not sent (those
    after the failed stage) are skipped. Steps of the same stage already sent still run:
    a chord's join needs every member's stored outcome, and skipping a queued member
    would leave it without one."""
    Run.objects.filter(pk=pipeline_id).finish(State.FAILED, note=f"Failed at step {step_name}.")
    waiting = Run.objects.filter(pipeline_id=pipeline_id, state=State.WAITING)
    waiting.finish(State.SKIPPED, note=f"Skipped: step {step_name} failed.")


def settle(pipeline_id: int) -> None:
    """Progress of the pipeline's run; once every step succeeded, its outcome (with the
    last stage's results as its result)."""
    steps = Run.objects.filter(pipeline_id=pipeline_id)
    total = steps.count()
    done = steps.filter(state=State.SUCCEEDED).count()
    runs = Run.objects.filter(pk=pipeline_id)
    if done < total:
        runs.report_progress(done, total, progress_text(done, total))
        return
    run = runs.only("task_id", "job_name", "parameters").first()
    if run is None:
        return
    current_app.backend.store_result(run.task_id, final_result(run), "SUCCESS")
    runs.report_progress(done, total, progress_text(done, total))
    runs.finish(State.SUCCEEDED)


def final_result(run: Run):
    """The last stage's result(s); None if they are not stored (pruned) or the plan
    cannot be worked out again."""
    from .inputs import MissingResult, results_of

    pipeline = get_pipeline(run.job_name)
    try:
        stages = pipeline.plan(typed_values(pipeline, run.parameters)) if pipeline else []
        return results_of(run.pk, stages[-1].name, wait=0) if stages else None
    except (MissingResult, TypeError, ValueError, KeyError):
        return None


def sweep() -> int:
    """Pipelines the worker's handler did not move on: a step ended outside its task (a
    hard time limit, a lost pool process, the jobs sweeper's reconcile), so no postrun
    signal came. Fails those with a failed step; settles those whose steps all
    succeeded. Returns how many pipeline runs it looked at."""
    active = Run.objects.filter(state__in=[State.STARTED, State.PROGRESS],
                                steps__isnull=False).distinct()  # fmt: skip
    failed = Run.objects.filter(pipeline__in=active, state=State.FAILED)
    cancelled = Run.objects.filter(pipeline__in=active, state=State.CANCELLED)
    looked = 0
    for pipeline_id, step in failed.values_list("pipeline_id", "step")[:BATCH]:
        looked += guarded(fail, pipeline_id, step)
    for pipeline_id, step in cancelled.values_list("pipeline_id", "step")[:BATCH]:
        looked += guarded(step_cancelled, pipeline_id, step)
    unfinished = Run.objects.filter(pipeline=OuterRef("pk")).exclude(state=State.SUCCEEDED)
    for pipeline_id in active.exclude(Exists(unfinished)).values_list("pk", flat=True)[:BATCH]:
        looked += guarded(settle, pipeline_id)
    return looked


def guarded(action, *args) -> int:
    """One pipeline's trouble is logged and never stops the sweep."""
    try:
        action(*args)
    except Exception:  # logged; the next sweep tries again
        log.exception("could not move pipeline run %s on", args[0])
    return 1


def typed_values(pipeline: Pipeline, parameters: dict) -> dict:
    from apps.jobs import params as P
    from apps.jobs.catalog import get_job

    job = get_job(pipeline.name)
    return {p.name: P.from_json(p, parameters[p.name]) for p in job.params if p.name in parameters}


def progress_text(done: int, total: int) -> str:
    return f"{done} of {total} steps done"


# Cancel ----------------------------------------------------------------------------------


def cancel(run: Run, by=None, note: str = "") -> bool | None:
    """dispatch.cancel_run for a pipeline's run (None for any other run)."""
    if get_pipeline(run.job_name) is None or not run.steps.exists():
        return None  # not a pipeline, or one whose task has not built it: a plain cancel
    who = f" by {by.get_username()}" if getattr(by, "is_authenticated", False) else ""
    note = note or f"Cancelled{who}."
    run.cancel(by)  # first: a step that stops now sees its pipeline's cancel under way
    waiting = run.steps.filter(state__in=NOT_STARTED)
    ids = list(waiting.values_list("task_id", flat=True))
    waiting.finish(State.CANCELLED, note=f"Cancelled with its pipeline{who}.")
    for step in run.steps.filter(state__in=UNFINISHED):
        dispatch.cancel_run(step, by)
    revoke(ids)
    Run.objects.filter(pk=run.pk).finish(State.CANCELLED, note=note)
    return True


def revoke(task_ids: list[str]) -> None:
    if task_ids:
        inspect.revoke(task_ids)
