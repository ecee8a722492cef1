"""Several runs in one message: a bulk start of many short runs, packed.

`start_runs(job, items, per_message=N)` (the API's `"per_message": N`, the CLI's
`--per-message N`) still writes one run record per item, but publishes one Celery
message per N runs: the task `apps.jobs.tasks.run_pack`, to the job's queue. A worker
executing a pack runs each of its runs through Celery's own tracer
(`celery.app.trace.trace_task`), with a request of the run's own (its task id, its
arguments, the pack's worker and delivery), so each run is claimed, started, stored
and ended exactly as if it had had a message of its own: the publish and worker
signals, the run record's transitions, the result row, progress, secrets masked.
What a run no longer pays is Celery's per-message work (the message built and
published, received, handed to a pool process, acknowledged): for jobs that take
about as long as that, packing is what makes a bulk start faster than a `.delay()`
loop (docs/performance.md, "Enqueue, end to end").

The rules (`packing_refused` says which one a job breaks):

- Only idempotent jobs (acknowledged late, sent again if their worker is lost): a pack
  is redelivered whole, and its runs that finished are skipped (their claim is refused),
  as a single run's duplicate message is.
- Not cancellable jobs (a cancel terminates their process): a pack is one process for
  all its runs. A cancelled run not started yet is skipped, as always.
- No rate limit (the worker applies it per message).
- A pack shares one time limit, the job's: for runs that are short, as packing is for.
  If a pack fails as a whole (its time limit, a pool process killed), `pack_failed`
  (its error callback) fails the run it was in with a note and sends its runs not
  started yet again, one message each.
- A run that retries is sent again alone (Celery's `retry` publishes its own message).

The sweeper sees a pack's runs as held by the broker while the pack's message is
(broker_held reads the run ids from the pack's `switchyard_runs` header).
"""

import functools
import logging
from collections.abc import Sequence

from celery import current_app
from celery.app.trace import trace_task
from celery.utils.saferepr import saferepr
from django.db import DatabaseError

from . import secrets
from .models import HELD_STATES, Run, State
from .publishing import plain_task

log = logging.getLogger(__name__)

PACK_AT_MOST = 100  # runs per message
HEADER = "switchyard_runs"
TASK = "apps.jobs.tasks.run_pack"
FAILED_NOTE = "Its pack of runs failed as a whole while it ran ({error})."


def packing_refused(job) -> str | None:
    """Why runs of `job` may not be packed; None if they may."""
    task = current_app.tasks.get(job.name)
    if task is None or not job.idempotent or not task.acks_late:
        return "only idempotent jobs (acknowledged late) can be packed"
    if job.cancellable:
        return "a cancellable job's runs are stopped one process each: not packed"
    if task.rate_limit:
        return "a rate-limited job's runs are not packed"
    if not plain_task(task):
        return "this job's task builds its own messages: not packed"
    return None


def pack_messages(job, runs, parameter_sets: Sequence[dict], per_message: int) -> list:
    """(task ids, publish) per pack: `publish(producer)` sends its message."""
    items = [[run.task_id, list(run.args), dict(parameters)]
             for run, parameters in zip(runs, parameter_sets, strict=True)]  # fmt: skip
    return [
        ([item[0] for item in chunk], functools.partial(_publish, job.name, chunk, runs[0].queue))
        for chunk in (items[i : i + per_message] for i in range(0, len(items), per_message))
    ]


def _publish(job_name: str, items: list, queue: str, producer) -> None:
    app = current_app
    task = app.tasks[job_name]
    # Where the job's own message would go: the queue asked for, else the job's route.
    queue = queue or getattr(task, "queue", None)
    route = app.amqp.router.route({"queue": queue} if queue else {}, job_name, (), {}, task)
    limits = _limits(task)
    app.tasks[TASK].apply_async(
        (job_name, items), producer=producer, queue=route["queue"],
        headers={HEADER: [item[0] for item in items]},
        # The clear values of secret parameters stay in the body only (secrets.py).
        argsrepr=f"({job_name!r}, <{len(items)} runs>)", kwargsrepr="{}",
        link_error=app.tasks["apps.jobs.tasks.pack_failed"].s(),
        time_limit=limits[0], soft_time_limit=limits[1],
    )  # fmt: skip


def _limits(task) -> tuple[float | None, float | None]:
    conf = task.app.conf
    return (task.time_limit or conf.task_time_limit,
            task.soft_time_limit or conf.task_soft_time_limit)  # fmt: skip


# In the worker ---------------------------------------------------------------------------


def run_pack(pack, job_name: str, items: list) -> int:
    """The body of `run_pack`: each run traced as Celery traces a task of its own.
    Returns how many runs it went through."""
    task = pack.app.tasks[job_name]
    outer = pack.request
    limits = _limits(task)
    for task_id, args, kwargs in items:
        request = {
            "id": task_id, "task": job_name, "args": args, "kwargs": kwargs,
            "hostname": outer.hostname, "delivery_info": outer.delivery_info,
            "reply_to": outer.reply_to, "correlation_id": task_id, "root_id": task_id,
            "retries": 0, "is_eager": False, "timelimit": limits,
            "argsrepr": saferepr(secrets.masked_args(job_name, args), secrets.REPR_MAXSIZE),
            "kwargsrepr": saferepr(secrets.masked(job_name, kwargs), secrets.REPR_MAXSIZE),
        }  # fmt: skip
        trace_task(task, task_id, args, kwargs, request, app=pack.app,
                   hostname=outer.hostname)  # fmt: skip
    return len(items)


def pack_failed(request, exc, traceback) -> None:
    """A pack failed as a whole (Celery calls this error callback where it stores the
    failure): its run still held by the pack's worker fails with a note; its runs not
    started are sent again, one message each."""
    from . import dispatch  # which imports this module

    job_name, items = request.args[0], request.args[1]
    ids = [item[0] for item in items]
    note = FAILED_NOTE.format(error=type(exc).__name__)
    try:
        held = Run.objects.filter(task_id__in=ids, state__in=HELD_STATES,
                                  worker=request.hostname or "")  # fmt: skip
        for task_id in held.values_list("task_id", flat=True):
            if Run.objects.filter(task_id=task_id).finish(State.FAILED, note=note):
                current_app.backend.mark_as_failure(task_id, exc)
        unsent = Run.objects.filter(task_id__in=ids, state=State.QUEUED, deliveries=0)
        kwargs = {item[0]: item[2] for item in items}
        for run in unsent:
            dispatch.send(run, {"queue": run.queue} if run.queue else None,
                          kwargs=kwargs[run.task_id])  # fmt: skip
    except DatabaseError:
        log.exception("pack of %s: could not put its runs right", job_name)
