"""The pipeline on its run's page: the steps as a graph, live (htmx polls the run's live
part, apps/jobs/templates/jobs/_run_live.html, which renders these parts).

Stages are columns, left to right; a stage's steps are boxes in its column. A stage of
many steps (a fan-out of 1,000) shows counts by state and at most SHOWN boxes, those
that failed or are running first: the page stays one query for the steps' states and one
for the shown steps' results.

Every step is a run of its own, seen by the rule of any run (`Run.objects.visible_to`,
as its page and the API): a step the viewer may not see is drawn with its name and state
only ("hidden"), without its job, times, worker, note, result or link.
"""

import datetime as dt
import functools
import json
import logging
from collections import Counter
from dataclasses import dataclass

from django.db.models import Exists, OuterRef, Value
from django.template.loader import render_to_string
from django.urls import reverse
from django_celery_results.models import TaskResult

from apps.jobs.models import Run, State
from apps.jobs.presenting import decoded

from .declare import get_pipeline
from .running import typed_values

log = logging.getLogger(__name__)
SHOWN = 24
RESULT_CHARS = 120
FIRST = {State.FAILED: 0, State.PROGRESS: 1, State.STARTED: 1, State.RETRYING: 1}
LABELS = dict(State.choices)
COLUMNS = ("pk", "task_id", "step", "state", "started_at", "finished_at", "worker",
           "retries", "note", "job_name")  # fmt: skip


@dataclass
class StepBox:
    pk: int
    task_id: str
    step: str
    state: str
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    worker: str
    retries: int
    note: str
    job_name: str
    seen: bool = True  # may the viewer see this step's run? (else: name and state only)
    result_text: str = ""

    @property
    def state_label(self) -> str:
        return LABELS.get(self.state, self.state)

    @property
    def run_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None

    @property
    def url(self) -> str:
        return reverse("jobs:run", args=[self.pk])


@dataclass
class Column:
    name: str
    steps: list[StepBox]
    counts: list[tuple[str, int]]
    hidden: int


def graph_part(context) -> str:
    run = context.get("run")
    pipeline = get_pipeline(getattr(run, "job_name", ""))
    if pipeline is None:
        return ""
    # Every step's name and state (a fan-out of 1,000 is read on every poll), then the
    # rest of the steps drawn.
    states = dict(Run.objects.filter(pipeline_id=run.pk).values_list("step", "state"))
    stages = [(name, [n for n in members if n in states])
              for name, members in layout(pipeline, run, states)]  # fmt: skip
    drawn = {n for _, members in stages for n in shown(members, states)}
    rows = Run.objects.filter(pipeline_id=run.pk, step__in=drawn).annotate(seen=seen_by(context))
    boxes = {row[2]: box(*row) for row in rows.values_list(*COLUMNS, "seen")}
    columns = [column(name, members, states, boxes) for name, members in stages]
    add_results(list(boxes.values()))
    failed_at = next((name for name, state in states.items() if state == State.FAILED), "")
    return render_to_string("pipelines/_graph.html", {
        "run": run, "columns": columns, "failed_at": failed_at, "total": len(states),
        "reruns_from_failure": run.state in (State.FAILED, State.CANCELLED),
        "steps_moving": run.is_finished and any(s in MOVING for s in states.values()),
    })  # fmt: skip


# A step in these states ends on its own: a pipeline that finished before its steps (a
# cancel leaves a running step of a job that is not cancellable to its end) keeps its
# page polling until they have (the live part stops once the pipeline's run finished).
MOVING = (State.PENDING_SEND, State.QUEUED, State.STARTED, State.PROGRESS, State.RETRYING)


def seen_by(context):
    """Whether the viewer may see each step's run, as its own page decides (in the same
    query as the steps drawn)."""
    user = getattr(context.get("request"), "user", None)
    if user is None or not user.is_authenticated:
        return Value(False)
    return Exists(Run.objects.visible_to(user).filter(pk=OuterRef("pk")))


def box(*row) -> StepBox:
    """A drawn step; one the viewer may not see keeps its name and state only."""
    step = StepBox(*row)
    if step.seen:
        return step
    return StepBox(pk=step.pk, task_id=step.task_id, step=step.step, state=step.state,
                   started_at=None, finished_at=None, worker="", retries=0, note="",
                   job_name="", seen=False)  # fmt: skip


def layout(pipeline, run: Run, steps: dict) -> list[tuple[str, list[str]]]:
    """(stage, its step names) in order, from the plan of the run's parameters."""
    try:
        return stage_names(pipeline.name, json.dumps(run.parameters, sort_keys=True))
    except Exception as error:  # a row an older version wrote: never a 500
        log.warning("pipeline run %s: no plan for its parameters (%s)", run.pk, error)
        return [(name, [name]) for name in steps]  # drawn as a list


@functools.lru_cache(maxsize=64)
def stage_names(name: str, parameters: str) -> list[tuple[str, list[str]]]:
    """Worked out once per pipeline and parameters (a plan depends on nothing else)."""
    pipeline = get_pipeline(name)
    stages = pipeline.plan(typed_values(pipeline, json.loads(parameters)))
    return [(stage.name, [s.name for s in stage.steps]) for stage in stages]


def shown(members: list[str], states: dict[str, str]) -> list[str]:
    """The steps of a stage drawn as boxes: all, or SHOWN with failed and running first."""
    if len(members) <= SHOWN:
        return members
    return sorted(members, key=lambda name: FIRST.get(states[name], 2))[:SHOWN]


def column(name: str, members: list[str], states: dict, boxes: dict) -> Column:
    counts = Counter(LABELS.get(states[m], states[m]) for m in members)
    drawn = [boxes[m] for m in shown(members, states) if m in boxes]
    return Column(name, drawn, sorted(counts.items()), len(members) - len(drawn))


def add_results(steps: list[StepBox]) -> None:
    done = {s.task_id: s for s in steps if s.state == State.SUCCEEDED and s.seen}
    if not done:
        return
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
