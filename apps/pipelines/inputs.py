"""A step's parameters taken from earlier steps' results, read when the step starts.

A step's stored parameters hold `{"$result": "<step or stage>"}` where the plan said
`Result(...)`; `fill` (a catalog argument filler, run in the worker just before the
job's body) replaces each with the stored result and writes the filled parameters on the
step's run, so its page, a re-run and a search show the values it ran with.
"""

import logging
import time

from celery import states
from django_celery_results.models import TaskResult

from apps.jobs import secrets
from apps.jobs.models import Run, State
from apps.jobs.presenting import stored_value

from .declare import RESULT_KEY
from .running import HEADER

log = logging.getLogger(__name__)

# Celery sends a chain's next task before it stores the result of the one that ended
# (celery.app.trace: "callback tasks must be applied before the result is stored"), so
# the next step may start a moment before its input is stored: it waits for it.
WAIT_FOR_RESULT = 30.0


class MissingResult(LookupError):
    """An earlier step's result is not stored (it did not succeed, or was pruned)."""


def is_reference(value) -> bool:
    return isinstance(value, dict) and set(value) == {RESULT_KEY}


def fill(request, kwargs: dict) -> dict:
    pipeline_id = getattr(request, HEADER, None)
    if pipeline_id is None or not any(is_reference(v) for v in kwargs.values()):
        return kwargs
    filled = {
        name: results_of(int(pipeline_id), value[RESULT_KEY]) if is_reference(value) else value
        for name, value in kwargs.items()
    }
    # Recorded as every run's parameters are: its secrets masked (apps/jobs/secrets.py).
    recorded = secrets.masked(request.task, filled)
    Run.objects.filter(task_id=request.id).update(parameters=recorded)
    return filled


def results_of(pipeline_id: int, name: str, wait: float = WAIT_FOR_RESULT):
    """The result of step `name`, or the results of stage `name` (its steps `name[i]`)
    in order."""
    steps = Run.objects.filter(pipeline_id=pipeline_id)
    single = steps.filter(step=name).values_list("task_id", flat=True).first()
    if single is not None:
        return stored_results([single], wait)[0]
    members = steps.filter(step__startswith=f"{name}[").values_list("step", "task_id")
    ordered = sorted(members, key=lambda m: member_index(m[0]))
    return stored_results([task_id for _, task_id in ordered], wait)


def member_index(step: str) -> int:
    try:
        return int(step.rsplit("[", 1)[1].rstrip("]"))
    except (IndexError, ValueError):
        return -1


def stored_results(task_ids: list[str], wait: float = WAIT_FOR_RESULT) -> list:
    found: dict = {}
    deadline, pause = time.monotonic() + wait, 0.01
    while True:
        rows = TaskResult.objects.filter(
            task_id__in=[t for t in task_ids if t not in found], status=states.SUCCESS
        ).only("task_id", "result", "content_type")
        found.update((row.task_id, stored_value(row)) for row in rows)
        missing = [t for t in task_ids if t not in found]
        if not missing:
            return [found[t] for t in task_ids]
        if time.monotonic() > deadline or not still_ending(missing):
            raise MissingResult(f"no stored result for step task {missing[0]}")
        time.sleep(pause)
        pause = min(pause * 2, 0.2)


def still_ending(task_ids: list[str]) -> bool:
    """Did each of these steps succeed or is it still running (its result may come)?"""
    gone = Run.objects.filter(task_id__in=task_ids).exclude(
        state__in=[State.SUCCEEDED, State.STARTED, State.PROGRESS]
    )
    return not gone.exists()
