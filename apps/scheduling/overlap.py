"""Overlap guard: skip a schedule's due run while its previous run is still running.

A run counts as "still running" only while two things agree: its run record is active
(pending_send, queued, started, progress, retrying) *and* its lock in Redis is alive.
The lock is one key per schedule holding the run's task id. Beat sets it when it sends
a run of a skip-policy schedule (time to live: two hard time limits, one for waiting in
the queue, one for running); the worker renews it when the run starts (one hard time
limit from then) and deletes it when the run finishes. A worker killed mid-run leaves
its run record "started", but the lock expires after the time limit, so the guard never
blocks forever.

Without a Redis for scheduling (SCHEDULING_REDIS_URL empty) the same bound comes from
the run record: a run started (or queued) longer ago than the hard time limit is dead.

RELEASE and REFRESH are token-checked compare-and-delete / compare-and-PEXPIRE, what
redis-py's Lock.do_release / do_reacquire run; kept as scripts because the lock is set
by beat and released by a worker that never held a Lock object, and they measured
faster (lease.py's docstring has the numbers and the decision for each script).
"""

import logging
from datetime import timedelta

import redis
from celery import current_app, signals
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone
from django_celery_beat.models import PeriodicTasks

from apps.jobs.models import ACTIVE_STATES, Run, Source, State

from .lease import redis_client
from .models import ScheduleOptions

log = logging.getLogger(__name__)

BUSY_STATES = (State.PENDING_SEND, *ACTIVE_STATES)
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
REFRESH = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


def lock_key(schedule_name: str) -> str:
    return f"switchyard:running:{schedule_name}"


def hard_time_limit(task_name: str) -> float:
    task = current_app.tasks.get(task_name)
    limit = getattr(task, "time_limit", None) or current_app.conf.task_time_limit
    return float(limit or 3600)


def running_run(schedule_name: str, task_name: str, client=None) -> Run | None:
    """The previous run of this schedule if it is still running, else None."""
    client = client or redis_client()
    if client is None:
        return _running_by_age(schedule_name, task_name)
    try:
        task_id = client.get(lock_key(schedule_name))
    except redis.RedisError:
        log.warning("overlap guard for %s: Redis unreachable, judging by age", schedule_name)
        return _running_by_age(schedule_name, task_name)
    if not task_id:
        return None
    return Run.objects.filter(task_id=task_id, state__in=BUSY_STATES).first()


def _running_by_age(schedule_name: str, task_name: str) -> Run | None:
    since = timezone.now() - timedelta(seconds=hard_time_limit(task_name))
    busy = Run.objects.filter(schedule_name=schedule_name, state__in=BUSY_STATES)
    started = busy.filter(started_at__gte=since) | busy.filter(
        started_at__isnull=True, queued_at__gte=since
    )
    return started.order_by("-queued_at").first()


def hold(schedule_name: str, task_id: str, ttl: float, client=None) -> None:
    """Take (or refresh) the schedule's lock for this run, for `ttl` seconds."""
    client = client or redis_client()
    if client is None:
        return
    try:
        client.set(lock_key(schedule_name), task_id, px=max(1, int(ttl * 1000)))
    except redis.RedisError as exc:
        log.warning("overlap lock for %s not set: %s", schedule_name, exc)


def refresh(schedule_name: str, task_id: str, ttl: float, client=None) -> None:
    """Extend the schedule's lock if this run holds it (only skip-policy runs do)."""
    _run_script(REFRESH, schedule_name, task_id, max(1, int(ttl * 1000)), client=client)


def release(schedule_name: str, task_id: str, client=None) -> None:
    """Drop the schedule's lock if this run still holds it."""
    _run_script(RELEASE, schedule_name, task_id, client=client)


def _run_script(script: str, schedule_name: str, *args, client=None) -> None:
    client = client or redis_client()
    if client is None:
        return
    try:
        client.eval(script, 1, lock_key(schedule_name), *args)
    except redis.RedisError as exc:
        log.warning("overlap lock for %s left to expire: %s", schedule_name, exc)


def record_skipped(entry, task_id: str, previous: Run) -> Run:
    """The due run that was not sent, recorded as skipped with the reason."""
    run = Run(
        task_id=task_id,
        job_name=entry.task,
        args=list(entry.args or []),
        parameters=dict(entry.kwargs or {}),
        source=Source.SCHEDULE,
        requested_by_label=entry.name,
        schedule_name=entry.name,
        queue=entry.options.get("queue") or "",
    )
    run.record_skipped(f"previous run {previous.pk} still running")
    return run


# Worker side: the lock follows the run. -------------------------------------------------


def _schedule_of(task) -> str:
    return getattr(task.request, "periodic_task_name", None) or ""


@signals.task_prerun.connect
def lock_while_running(task_id: str, task, **kwargs) -> None:
    name = _schedule_of(task)
    if name:  # from now on the lock lasts one hard time limit (plus a minute)
        refresh(name, task_id, hard_time_limit(task.name) + 60)


@signals.task_postrun.connect
def unlock_when_finished(task_id: str, task, state: str | None = None, **kwargs) -> None:
    name = _schedule_of(task)
    if name and state != "RETRY":
        release(name, task_id)


# A change to the options alone (overlap policy) must reach beat like any other edit.


@receiver(post_save, sender=ScheduleOptions)
@receiver(post_delete, sender=ScheduleOptions)
def announce_options_change(**kwargs) -> None:
    PeriodicTasks.update_changed()
