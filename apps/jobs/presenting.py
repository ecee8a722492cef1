"""What a run looks like to a reader: the one description of a run.

The run page (`views.run_context`), `manage.py jobs status` (`cli.run_summary`) and the
API (`api.schemas.run_detail`, `run_summary`) all describe a run with `describe(run,
user)` (or `summary(run)` for a list, without the stored result) and only format what
it says: HTML, text lines, JSON.
"""

import datetime as dt
import json
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

from celery import states
from django.urls import reverse
from django_celery_results.models import TaskResult

from . import json_values
from .catalog import get_job
from .dispatch import cancel_refusal
from .models import NOT_STARTED, Run
from .permissions import may_run

ADD_SCHEDULE = "django_celery_beat.add_periodictask"
# The stored row's states whose traceback is the run's last error: its outcome, or the
# error it is being retried after.
WITH_TRACEBACK = states.READY_STATES | {states.RETRY}


@dataclass(frozen=True)
class Progress:
    # A number; "Infinity", "-Infinity" or "NaN" for one that is not finite (`progress`).
    done: float | str | None
    total: float | str | None
    percent: int | None
    message: str


@dataclass(frozen=True)
class RunView:
    id: int
    task_id: str
    job_name: str
    job_title: str  # "" for a task the catalog does not know
    state: str
    state_label: str
    source: str
    source_label: str
    requested_by: str  # user name, schedule name or OS user
    schedule_name: str
    queue: str
    parameters: dict
    args: list
    queued_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    wait_seconds: float | None  # from queued to started
    run_seconds: float | None  # from started to finished
    worker: str
    retries: int
    deliveries: int
    progress: Progress | None  # None until the job reports some
    cancel_requested_at: dt.datetime | None
    rerun_of: int | None
    note: str
    is_finished: bool
    # From the stored result (describe only): the job's return value (or exception) once
    # Celery finished it, as data, and the traceback of its last error.
    has_result: bool = False
    result: Any = None
    traceback: str | None = None
    # What the reader may do with it (describe with a user only).
    may_cancel: bool = False
    may_rerun: bool = False
    schedule_url: str = ""
    # A failure somebody dealt with (discarded, or retried in bulk): when and who.
    handled_at: dt.datetime | None = None
    handled_by: str = ""


def summary(run: Run) -> RunView:
    """The run record alone, no query (the rows of a list)."""
    job = get_job(run.job_name)
    return RunView(
        id=run.pk, task_id=run.task_id, job_name=run.job_name,
        job_title=job.title if job else "", state=run.state,
        state_label=run.get_state_display(), source=run.source,
        source_label=run.get_source_display(), requested_by=run.who,
        schedule_name=run.schedule_name, queue=run.queue,
        # A row written by hand may hold another JSON shape: shown empty, never a 500.
        parameters=run.parameters if isinstance(run.parameters, dict) else {},
        args=run.args if isinstance(run.args, list) else [],
        queued_at=run.queued_at, started_at=run.started_at,
        finished_at=run.finished_at, wait_seconds=seconds(run.wait_time),
        run_seconds=seconds(run.run_time), worker=run.worker, retries=run.retries,
        deliveries=run.deliveries, progress=progress(run),
        cancel_requested_at=run.cancel_requested_at, rerun_of=run.rerun_of_id,
        note=run.note, is_finished=run.is_finished, handled_at=run.handled_at,
        handled_by=run.handled_by_name if run.handled_at else "",
    )  # fmt: skip


def describe(run: Run, user=None) -> RunView:
    """The run with its stored result and traceback (one query; none for a run not yet
    started) and, for `user`, what they may do with it (nothing without a user)."""
    view = summary(run)
    # A run not started has no stored result: no query (the API's answer to a start).
    stored = None if run.state in NOT_STARTED else (
        TaskResult.objects.filter(task_id=run.task_id)
        .only("status", "result", "traceback", "content_type", "worker")
        .first()
    )  # fmt: skip
    ready = stored is not None and stored.status in states.READY_STATES
    facts = {
        "worker": view.worker or (stored.worker if stored else "") or "",
        "has_result": ready,
        "result": decoded(stored) if ready else None,
        "traceback": (stored.traceback or None)
        if stored and stored.status in WITH_TRACEBACK
        else None,
    }
    return replace(view, **shown(view, facts), **links(run, user))


def shown(view: RunView, facts: dict) -> dict:
    """The stored values a reader sees, each lone surrogate replaced: a row written
    before the rule of apps/jobs/json_values.py may hold one, which no page (nor a
    terminal) can encode."""
    values = {"parameters": view.parameters, "args": view.args, **facts}
    for name in ("parameters", "args", "result", "traceback"):
        values[name] = json_values.printable(values[name])
    return values


def links(run: Run, user) -> dict:
    if user is None or not may_run(user, run.job_name):
        return {}
    return {
        "may_cancel": may_cancel(run),
        "may_rerun": True,
        "schedule_url": schedule_url(run) if user.has_perm(ADD_SCHEDULE) else "",
    }


def may_cancel(run: Run) -> bool:
    """Cancel is offered by `dispatch.cancel_refusal`, the rule every door keeps (a run
    not running yet, or a running one of a cancellable job), once: not after it was asked."""
    return cancel_refusal(run) is None and not run.cancel_requested_at


def schedule_url(run: Run) -> str:
    """The admin's add form of a periodic task, prefilled with this job and parameters."""
    prefill = {"task": run.job_name, "kwargs": json.dumps(run.parameters)}
    if run.args:
        prefill["args"] = json.dumps(run.args)
    return f"{reverse('admin:django_celery_beat_periodictask_add')}?{urlencode(prefill)}"


def progress(run: Run) -> Progress | None:
    """The stored numbers as `json_values.printable` shows them: one that is not finite
    (a row written by hand) by its name, as a result's."""
    if run.progress_total is None:
        return None
    done, total = (json_values.printable(n) for n in (run.progress_done, run.progress_total))
    return Progress(done, total, run.percent, run.progress_message)


def seconds(span: dt.timedelta | None) -> float | None:
    return span.total_seconds() if span is not None else None


def decoded(stored: TaskResult) -> Any:
    """The stored result for showing: JSON read by `json_values.stored` (a text it
    cannot read, such as one nested too deep, is its "not readable" marker); anything
    else as the stored text."""
    if stored.result is None or stored.content_type not in ("application/json", ""):
        return stored.result
    return json_values.stored(stored.result)


def stored_value(stored: TaskResult) -> Any:
    """The stored result as data for a job (a pipeline step's input): as `decoded`, but
    json_values.Unreadable for a text that cannot be read, rather than a marker."""
    if stored.result is None or stored.content_type not in ("application/json", ""):
        return stored.result
    return json_values.read_stored(stored.result)
