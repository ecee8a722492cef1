"""Every control action, one plain function each: check who acts, check the input, act,
record it (ControlAction). Views, the API and the CLI call these and nothing else.

Raises ControlDenied (the actor may not) or ControlError (bad input: nothing done).
"""

import logging
from dataclasses import dataclass

from celery import current_app
from django.db import transaction

from apps.audit import recording as audit
from apps.jobs import inspect
from apps.jobs.catalog import could_be_queue, get_job, queue_names
from apps.jobs.models import Run, State
from apps.jobs.permissions import allowed_job_names, may_run

from . import broker
from .models import ControlAction, QueuePause, RateLimit, Via
from .rules import (
    Actor,
    ControlDenied,
    ControlError,
    autoscale_bounds,
    check,
    parse_rate,
    pool_step,
)

log = logging.getLogger(__name__)

# apps/control/worker.py: cancel_consumer / add_consumer where configured, in order
PAUSE_COMMAND, RESUME_COMMAND = "switchyard_pause", "switchyard_resume"
REPLY_TIMEOUT = 2.0
NOT_TOLD = (
    "the broker is unreachable, so the workers running now were not told: each applies "
    "the stored pauses and rate limits when it starts or reconnects to the broker"
)
CANCEL_CHUNK = 500


def record(actor: Actor, action: str, target: str, **detail) -> ControlAction:
    """The one place a control action is written down (who, when, through which door):
    its own row, and an entry in the audit log beside schedule and token changes."""
    done = ControlAction.objects.create(
        user=actor.user, label=actor.name[:150], via=actor.via,
        action=action, target=target[:200], detail=detail,
    )  # fmt: skip
    audit.record(action, target, user=actor.user, via=actor.via, changes=detail,
                 label=actor.name)  # fmt: skip
    return done


# Queues ------------------------------------------------------------------------------------


def known_queue(name: str) -> str:
    """The one check of a queue name, at every door: a configured or paused queue. A name
    no queue could have (control characters, such as NUL, or too long) is refused
    before the database is asked."""
    name = (name or "").strip()
    if could_be_queue(name) and (
        name in queue_names() or QueuePause.objects.filter(queue=name).exists()
    ):
        return name
    raise ControlError(f"unknown queue {name[:60]!r}; known: {', '.join(queue_names())}", "queue")


def paused_queues() -> set[str]:
    return set(QueuePause.objects.values_list("queue", flat=True))


def pause_queue(actor: Actor, queue: str) -> ControlAction:
    """Stored first, so a worker starting now reads it; then every worker alive is told."""
    check(actor)
    queue = known_queue(queue)
    QueuePause.objects.get_or_create(queue=queue, defaults={"paused_by": actor.name[:150]})
    return _tell_workers(record(actor, "pause_queue", queue), PAUSE_COMMAND, queue=queue)


def resume_queue(actor: Actor, queue: str) -> ControlAction:
    """Workers configured for the queue consume it again (others are not added to it)."""
    check(actor)
    queue = known_queue(queue)
    QueuePause.objects.filter(queue=queue).delete()
    return _tell_workers(record(actor, "resume_queue", queue), RESUME_COMMAND, queue=queue)


@dataclass(frozen=True)
class Purged:
    dropped: int
    cancelled: int


def purge_queue(actor: Actor, queue: str) -> Purged:
    """Drop every waiting message; the runs they carried end cancelled with a note."""
    check(actor)
    queue = known_queue(queue)
    dropped = broker.drain(queue)
    task_ids = [task_id for task_id in dropped if task_id]
    note = f"Message dropped: queue {queue} purged by {actor.name} ({actor.via})."
    cancelled = 0
    for start in range(0, len(task_ids), CANCEL_CHUNK):
        chunk = task_ids[start : start + CANCEL_CHUNK]
        cancelled += Run.objects.filter(task_id__in=chunk).finish(State.CANCELLED, note=note)
    broker.forget_snapshot()
    record(actor, "purge_queue", queue, dropped=len(dropped), cancelled=cancelled)
    return Purged(len(dropped), cancelled)


# Workers -----------------------------------------------------------------------------------


def known_worker(name: str) -> str:
    """A worker answering now: in the last inspection, or answering a ping (Celery
    names workers `name@host`; other names are refused without asking)."""
    name = (name or "").strip()
    if "@" in name and (name in broker.alive_workers() or broker.answers(name)):
        return name
    raise ControlError(f"no worker {name[:100]!r} is answering", "worker")


def grow_pool(actor: Actor, worker: str, n: int = 1) -> ControlAction:
    check(actor)
    n, worker = pool_step(n), known_worker(worker)
    answer = _ask(worker, "pool_grow", n=n)
    return record(actor, "grow_pool", worker, n=n, answer=answer)


def shrink_pool(actor: Actor, worker: str, n: int = 1) -> ControlAction:
    check(actor)
    n, worker = pool_step(n), known_worker(worker)
    answer = _ask(worker, "pool_shrink", n=n)
    return record(actor, "shrink_pool", worker, n=n, answer=answer)


def autoscale(actor: Actor, worker: str, maximum: int, minimum: int) -> ControlAction:
    check(actor)
    worker = known_worker(worker)
    maximum, minimum = autoscale_bounds(maximum, minimum)
    answer = _ask(worker, "autoscale", max=maximum, min=minimum)
    return record(actor, "autoscale", worker, max=maximum, min=minimum, answer=answer)


def shutdown_worker(actor: Actor, worker: str) -> ControlAction:
    """Warm shutdown: the worker takes nothing new, finishes its running jobs, exits."""
    check(actor)
    worker = known_worker(worker)
    with broker.reachable():
        inspect.broadcast("shutdown", destination=[worker])
    broker.forget_consumers()
    return record(actor, "shutdown_worker", worker)


def _ask(worker: str, command: str, **arguments) -> str:
    """Send one command to one worker and return its answer; its refusal is a ControlError."""
    with broker.reachable():
        replies = inspect.broadcast(
            command, arguments=arguments, destination=[worker], reply=True, timeout=REPLY_TIMEOUT
        )
    answer = inspect.by_worker(replies).get(worker)
    if answer is None:
        raise ControlError(f"worker {worker} did not answer {command} in {REPLY_TIMEOUT:g} s")
    if "error" in answer:
        raise ControlError(f"worker {worker} refused {command}: {answer['error']}"[:300])
    return str(answer.get("ok", ""))[:300]


# Rate limits -------------------------------------------------------------------------------


def catalog_job(name: str):
    job = get_job((name or "").strip())
    if job is None:
        raise ControlError(f"unknown job {str(name)[:100]!r}", "job")
    return job


def runnable_job(actor: Actor, name: str):
    """The catalog job, for those who may run it (permissions.may_run, the rule of the
    job's own pages and endpoints): its rate limit is neither shown nor set to others."""
    job = catalog_job(name)
    if actor.via != Via.CLI and not may_run(actor.user, job):
        raise ControlDenied("You may not run this job.")
    return job


JOB_ACTIONS = ("set_rate_limit", "clear_rate_limit")  # their target is a job's name


def runnable_job_names(user) -> list[str] | None:
    """runnable_job's rule for lists (the admin's): the jobs whose rate limits and
    rate-limit actions `user` may see; None: every job (superusers)."""
    return None if user.is_superuser else allowed_job_names(user)


def set_rate_limit(actor: Actor, job_name: str, rate: str | None) -> ControlAction:
    """Store the limit and tell every worker alive; `rate` None or empty clears it."""
    check(actor)
    job = runnable_job(actor, job_name)
    if not (rate or "").strip():
        return clear_rate_limit(actor, job.name)
    rate = parse_rate(rate)
    RateLimit.objects.update_or_create(
        job_name=job.name, defaults={"rate": rate, "set_by": actor.name[:150]}
    )
    row = record(actor, "set_rate_limit", job.name, rate=rate)
    return _tell_workers(row, "rate_limit", task_name=job.name, rate_limit=rate)


def clear_rate_limit(actor: Actor, job_name: str) -> ControlAction:
    """Back to the limit the job's code declares (none for most jobs)."""
    check(actor)
    job = runnable_job(actor, job_name)
    RateLimit.objects.filter(job_name=job.name).delete()
    declared = declared_rate(job.name)
    row = record(actor, "clear_rate_limit", job.name, declared=declared)
    return _tell_workers(row, "rate_limit", task_name=job.name, rate_limit=declared)


def declared_rate(task_name: str) -> str | None:
    """The rate limit in the task's code (its class attribute, which the worker's
    `rate_limit` control never changes)."""
    task = current_app.tasks.get(task_name)
    return type(task).rate_limit if task is not None else None


def _tell_workers(row: ControlAction, command: str, **arguments) -> ControlAction:
    """Broadcast once the stored change is committed; then `row.told_workers` says
    whether the broker took the command (None until the transaction commits)."""
    row.told_workers = None

    def tell() -> None:
        row.told_workers = _broadcast(command, **arguments)

    transaction.on_commit(tell)
    return row


def _broadcast(command: str, **arguments) -> bool:
    try:
        inspect.broadcast(command, arguments=arguments)
    except inspect.BrokerDown as exc:  # stored already: workers apply it when they (re)start
        log.warning("could not broadcast %s %s: %s", command, arguments, exc)
        return False
    finally:
        broker.forget_consumers()
        broker.forget_snapshot()
    return True
