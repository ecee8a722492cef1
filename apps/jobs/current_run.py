"""What the worker knows about the run it is executing: one object per task execution.

Created by the prerun handler (apps.jobs.recording.record_start) for a recorded task and
kept on Celery's request, the one object whose lifetime is exactly one execution and
which the result backend receives with every state it stores. The result backend
(apps.jobs.backend) and the catalog's wrapper (apps.jobs.catalog) read and fill it;
nothing else is kept on the request.
"""

import datetime as dt
import uuid
from dataclasses import dataclass, field

ATTRIBUTE = "switchyard_run"


@dataclass(slots=True)
class CurrentRun:
    task_id: str
    # This execution's token, written on the run when it claims it: its progress and
    # outcome (and result row) are stored only while the run still holds this token,
    # so a worker cut off and taken over by the sweeper cannot overwrite what the
    # execution that replaced it wrote (apps.jobs.sweeper.recover_lost_workers).
    attempt: str = field(default_factory=lambda: uuid.uuid4().hex)
    # The result backend writes this run's start and outcome with its STARTED and final
    # results (one statement each), instead of the prerun and postrun handlers.
    backend_writes: bool = False
    # When the run was claimed, for the result row's date_started (backend_writes).
    started_at: dt.datetime | None = None
    # Not claimed: cancelled while queued, or a duplicate of a finished run. The job body
    # is skipped and the run left as it is.
    skip: bool = False
    # The outcome was written with the result (the postrun handler has nothing to do).
    outcome_stored: bool = False


def begin(request, task_id: str) -> CurrentRun:
    """A new execution of a recorded task: its CurrentRun, kept on its request."""
    current = CurrentRun(task_id)
    setattr(request, ATTRIBUTE, current)
    return current


def of(request) -> CurrentRun | None:
    """This execution's CurrentRun; None for tasks without a run record, eager calls,
    and states stored from outside the task (a lost pool process, a revoke)."""
    return getattr(request, ATTRIBUTE, None)
