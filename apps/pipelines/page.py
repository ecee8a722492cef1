"""The pipeline on its run's page: the steps as a graph, live (htmx polls the run's live
part, apps/jobs/templates/jobs/_run_live.html, which renders these parts).

Stages are columns, left to right; a stage's steps are boxes in its column. A stage of
many steps (a fan-out of 1,000) shows counts by state and at most SHOWN boxes, those
that failed or are running first: the page stays one query for the steps' states and one
for the shown steps' results.
"""

from collections import Counter
from dataclasses import dataclass

from django.template.loader import render_to_string
from django_celery_results.models import TaskResult

from apps.jobs.models import Run, State
from apps.jobs.presenting import decoded

from .declare import PlanError, get_pipeline
from .running import typed_values

SHOWN = 24
RESULT_CHARS = 120
FIRST = {State.FAILED: 0, State.PROGRESS: 1, State.STARTED: 1, State.RETRYING: 1}
COLUMNS = ("pk", "task_id", "step", "state", "started_at", "finished_at", "worker",
           "retries", "note", "queued_at", "job_name", "pipeline")  # fmt: skip


@dataclass
class Column:
    name: str
    steps: list[Run]
    counts: list[tuple[str, int]]
    hidden: int


def graph_part(context) -> str:
    run = context.get("run")
    pipeline = get_pipeline(getattr(run, "job_name", ""))
    if pipeline is None:
        return ""
    steps = {s.step: s for s in run.steps.only(*COLUMNS)}
    columns = layout(pipeline, run, steps)
    add_results([s for c in columns for s in c.steps])
    failed_at = next((s.step for s in steps.values() if s.state == State.FAILED), "")
    return render_to_string("pipelines/_graph.html", {
        "run": run, "columns": columns, "failed_at": failed_at, "total": len(steps),
        "reruns_from_failure": run.state in (State.FAILED, State.CANCELLED),
    })  # fmt: skip


def layout(pipeline, run: Run, steps: dict[str, Run]) -> list[Column]:
    try:
        stages = pipeline.plan(typed_values(pipeline, run.parameters))
        names = [(stage.name, [s.name for s in stage.steps]) for stage in stages]
    except (PlanError, TypeError, ValueError, KeyError):
        names = [(name, [name]) for name in steps]  # the plan changed since: a list
    return [column(stage, [steps[n] for n in members if n in steps]) for stage, members in names]


def column(name: str, members: list[Run]) -> Column:
    counts = Counter(s.get_state_display() for s in members)
    shown = members
    if len(members) > SHOWN:  # failed and running ones first
        shown = sorted(members, key=lambda s: FIRST.get(s.state, 2))[:SHOWN]
    return Column(name, shown, sorted(counts.items()), len(members) - len(shown))


def add_results(steps: list[Run]) -> None:
    done = {s.task_id: s for s in steps if s.state == State.SUCCEEDED}
    for s in steps:
        s.result_text = ""
    rows = TaskResult.objects.filter(task_id__in=done).only("task_id", "result", "content_type")
    for row in rows:
        text = str(decoded(row))
        cut = text[:RESULT_CHARS] + ("…" if len(text) > RESULT_CHARS else "")
        done[row.task_id].result_text = cut


def step_part(context) -> str:
    """On a step's page: which pipeline run it belongs to."""
    run = context.get("run")
    if not getattr(run, "pipeline_id", None):
        return ""
    return render_to_string("pipelines/_step_of.html", {"run": run})
