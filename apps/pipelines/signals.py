"""The worker's side: a pipeline step that ended moves its pipeline on (running.py)."""

import logging

from celery import signals

from . import running

log = logging.getLogger(__name__)


@signals.task_postrun.connect
def pipeline_step_ended(task_id: str, task, state: str | None = None, **kwargs) -> None:
    pipeline_id = getattr(task.request, running.HEADER, None)
    if pipeline_id is None or state not in ("SUCCESS", "FAILURE", "IGNORED"):
        return  # not a step, or retrying (IGNORED: cancelled, or a duplicate skipped)
    try:
        running.step_ended(int(pipeline_id), task_id, succeeded=state == "SUCCESS")
    except Exception:  # logged; the step has stored its own outcome
        log.exception("could not move pipeline run %s on after step %s", pipeline_id, task_id)
