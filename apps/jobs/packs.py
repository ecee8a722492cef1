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

- Only idempotent jobs (acknowledged late, sent again if their worker is lost). A pack
  delivered again (its pool process was lost) first sends alone its runs that never
  started, then runs the one it was in again (as a single run's message would be);
  runs that finished are skipped (their claim is refused).
- Not cancellable jobs (a cancel terminates their process): a pack is one process for
  all its runs. A cancelled run not started yet is skipped, as always.
- No rate limit, declared or set at run time (apps.control adds that rule to
  `refusers`; the worker applies a limit per message): a pack published before a limit
  was set is sent alone, run by run, by the worker. No router function in
  task_routes (it could route each run by its arguments); the pack goes where the job's
  own message would, with the job's routing options.
- Time limits: a pack's are the job's plus a budget (half the job's shortest limit, at
  most 30 s), and the pack starts runs only within that budget, sending the rest alone:
  every run it starts has at least the job's own limits. If a pack fails as a whole
  (its hard limit), `pack_failed` (its error callback) fails the run it was in with a
  note and sends its runs not started alone.
- A run that retries is sent again alone (Celery's `retry` publishes its own message);
  a job that raises Reject in a pack fails with a note (it has no message of its own to
  reject).
- Every sending alone is once per run (`Run.claim_send`, as the sweeper's).

The sweeper sees a pack's runs as held by the broker while the pack's message is
(broker_held reads the run ids from the pack's `switchyard_runs` header). A message
for `run_pack` that is not a packable job and a list of at most PACK_AT_MOST
[task id, args, kwargs] is refused with a log line; its runs stay queued, and the
sweeper sends them alone.
"""

import functools
import logging
import time
from collections.abc import Sequence

from celery import current_app, states
from celery.app.routes import MapRoute
from celery.app.trace import trace_task
from celery.utils.saferepr import saferepr
from django.db import DatabaseError

from . import secrets
from .catalog import get_job
from .models import HELD_STATES, Run, State
from .publishing import plain_task

log = logging.getLogger(__name__)

PACK_AT_MOST = 100  # runs per message
HEADER = "switchyard_runs"
TASK = "apps.jobs.tasks.run_pack"
FAILED_TASK = "apps.jobs.tasks.pack_failed"
BUDGET_AT_MOST = 30.0  # seconds: see budget_seconds
ROUTING = ("queue", "exchange", "exchange_type", "routing_key", "priority")  # route_of
FAILED_NOTE = "Its pack of runs failed as a whole while it ran ({error})."
FAILED_ALONE_NOTE = "Sent alone: its pack of runs failed as a whole ({error})."


# Apps above jobs add rules of their own here: `refuser(job_name)` returns why that job's
# runs may not be packed now, or None (apps.control: a rate limit set at run time).
refusers: list = []


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
    if any(not isinstance(route, MapRoute) for route in current_app.amqp.router.routes):
        return "task_routes has a router function, which may route each run by its arguments"
    return next((reason for refuser in refusers if (reason := refuser(job.name))), None)


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
    hard, soft = _limits(task)
    budget = budget_seconds(task)
    app.tasks[TASK].apply_async(
        (job_name, items), producer=producer, **route_of(task, queue),
        headers={HEADER: [item[0] for item in items]},
        # The clear values of secret parameters stay in the body only (secrets.py).
        argsrepr=f"({job_name!r}, <{len(items)} runs>)", kwargsrepr="{}",
        link_error=app.tasks[FAILED_TASK].s(),
        # Each run it starts has at least its job's own limits (see budget_seconds).
        time_limit=hard and hard + budget, soft_time_limit=soft and soft + budget,
    )  # fmt: skip


def route_of(task, queue: str) -> dict:
    """Where the job's own message would go (the queue asked for, else the job's own
    options and route), with the routing options that come with it."""
    options = {key: value for key, value in task._get_exec_options().items()
               if key in ROUTING and value is not None}  # fmt: skip
    if queue:
        options["queue"] = queue
    return task.app.amqp.router.route(options, task.name, (), {}, task)


def _limits(task) -> tuple[float | None, float | None]:
    conf = task.app.conf
    return (task.time_limit or conf.task_time_limit,
            task.soft_time_limit or conf.task_soft_time_limit)  # fmt: skip


def budget_seconds(task) -> float:
    """How long a pack keeps starting runs: its time limits are the job's plus this, so
    every run it starts has at least the job's own; runs it has not started by then are
    sent on alone. Half the job's shortest limit, at most BUDGET_AT_MOST."""
    limits = [limit for limit in _limits(task) if limit]
    return min([BUDGET_AT_MOST, *(limit / 2 for limit in limits)])


# In the worker ---------------------------------------------------------------------------


def run_pack(pack, job_name: str, items) -> int:
    """The body of `run_pack`: each run traced as Celery traces a task of its own, until
    the pack's budget is spent (the rest are sent alone). A pack delivered again (its
    pool process was lost) first sends alone its runs that never started, so that a run
    which ends its process cannot hold the others back. Returns the runs it traced."""
    task = pack.app.tasks.get(job_name)
    if task is None or not well_formed(items):
        log.error("refused a pack of %r: no such job here, or not a list of at most %d "
                  "[task id, args, kwargs]", job_name, PACK_AT_MOST)  # fmt: skip
        return 0  # its runs stay queued: the sweeper sends them alone (resend_lost)
    if reason := packing_refused_for(task):  # a rule that came since (a rate limit)
        log.warning("a pack of %r is sent alone, run by run: %s", job_name, reason)
        send_alone(job_name, items, note=f"Sent alone: {reason}.")
        return 0
    outer = pack.request
    started = time.monotonic()
    budget = budget_seconds(task)
    done: set[str] = set()
    if (outer.delivery_info or {}).get("redelivered"):
        done |= send_alone(job_name, items, note=REDELIVERED_NOTE)
    traced = 0
    for task_id, args, kwargs in items:
        if task_id in done:
            continue
        if time.monotonic() - started > budget:
            send_alone(job_name, items, note=BUDGET_NOTE)
            break
        state = trace_one(pack, task, outer, task_id, args, kwargs)
        traced += 1
        if state == states.REJECTED:
            _finish_rejected(task_id)
    return traced


REDELIVERED_NOTE = "Sent alone: its pack was delivered again."
BUDGET_NOTE = "Sent alone: its pack ran out of time to start it."


def trace_one(pack, task, outer, task_id: str, args: list, kwargs: dict) -> str | None:
    """One run through Celery's own tracer, with a request of its own: its state."""
    request = {
        "id": task_id, "task": task.name, "args": args, "kwargs": kwargs,
        "hostname": outer.hostname, "delivery_info": outer.delivery_info,
        "reply_to": outer.reply_to, "correlation_id": task_id, "root_id": task_id,
        "retries": 0, "is_eager": bool(outer.is_eager), "timelimit": _limits(task),
        "argsrepr": saferepr(secrets.masked_args(task.name, args), secrets.REPR_MAXSIZE),
        "kwargsrepr": saferepr(secrets.masked(task.name, kwargs), secrets.REPR_MAXSIZE),
    }  # fmt: skip
    traced = trace_task(task, task_id, args, kwargs, request, app=pack.app,
                        hostname=outer.hostname)  # fmt: skip
    return traced.info.state if traced.info is not None else None


def _finish_rejected(task_id: str) -> None:
    """A job that raised Reject: alone, its message would be dropped or requeued by the
    worker; in a pack there is no message of its own, so the run fails with a note."""
    note = "Rejected by its job (Reject) inside a pack: not run again."
    Run.objects.filter(task_id=task_id).finish(State.FAILED, note=note)


def well_formed(items) -> bool:
    return (isinstance(items, list) and 0 < len(items) <= PACK_AT_MOST
            and all(isinstance(item, list) and len(item) == 3 and isinstance(item[0], str)
                    and isinstance(item[1], list) and isinstance(item[2], dict)
                    for item in items))  # fmt: skip


def packing_refused_for(task) -> str | None:
    job = get_job(task.name)
    return packing_refused(job) if job is not None else "not a job of the catalog"


def send_alone(job_name: str, items: list, note: str) -> set[str]:
    """Send the pack's runs that never started, one message each (their own kwargs:
    a run's stored parameters hold masks for its secrets). Once per run: a sweeper or
    another call sending it first wins (send_attempts). Returns the runs sent."""
    from . import dispatch  # which imports this module

    kwargs = {item[0]: item[2] for item in items}
    waiting = Run.objects.filter(task_id__in=list(kwargs), job_name=job_name,
                                 state=State.QUEUED, deliveries=0, send_attempts=0)  # fmt: skip
    sent = set()
    for run in waiting:
        if run.claim_send(State.QUEUED, note=note):
            dispatch.send(run, {"queue": run.queue} if run.queue else None,
                          kwargs=kwargs[run.task_id])  # fmt: skip
            sent.add(run.task_id)
    return sent


def pack_failed(request, exc, traceback) -> None:
    """A pack failed as a whole (Celery calls this error callback where it stores the
    failure, sometimes twice): the run it was in fails with a note; its runs not started
    are sent alone."""
    job_name, items = (request.args or [None, None])[:2]
    if not isinstance(job_name, str) or not well_formed(items):
        return
    note = FAILED_NOTE.format(error=type(exc).__name__)
    try:
        # Run by this pack: held by its worker, never retried nor sent alone.
        held = Run.objects.filter(task_id__in=[item[0] for item in items], job_name=job_name,
                                  state__in=HELD_STATES, worker=request.hostname or "",
                                  retries=0, send_attempts=0)  # fmt: skip
        for task_id in held.values_list("task_id", flat=True):
            if Run.objects.filter(task_id=task_id).finish(State.FAILED, note=note):
                current_app.backend.mark_as_failure(task_id, exc)
        send_alone(job_name, items, note=FAILED_ALONE_NOTE.format(error=type(exc).__name__))
    except DatabaseError:
        log.exception("pack of %s: could not put its runs right", job_name)
