"""`make_*` helpers for the operations tests."""

import json
import time
import uuid
from datetime import timedelta

from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask
from django_celery_results.models import TaskResult

from apps.jobs.models import Run, State
from tests.helpers import make_run


def make_result(task_name: str = "apps.demo.tasks.add", **kw) -> TaskResult:
    kw.setdefault("task_id", str(uuid.uuid4()))
    kw.setdefault("status", "SUCCESS")
    kw.setdefault("task_args", json.dumps("[]"))
    kw.setdefault("task_kwargs", json.dumps("{'x': 1, 'y': 2}"))
    done = kw.pop("date_done", None)
    result = TaskResult.objects.create(task_name=task_name, **kw)
    if done:  # auto_now: set it afterwards
        TaskResult.objects.filter(pk=result.pk).update(date_done=done)
        result.refresh_from_db()
    return result


def make_finished_run(job_name: str = "apps.demo.tasks.add", seconds: float = 2, **kw) -> Run:
    finished = kw.pop("finished_at", timezone.now())
    kw.setdefault("state", State.SUCCEEDED)
    kw.setdefault("started_at", finished - timedelta(seconds=seconds))
    kw.setdefault("queued_at", kw["started_at"] - timedelta(seconds=1))
    return make_run(job_name, finished_at=finished, **kw)


def make_run_with_result(job_name: str = "apps.demo.tasks.add", **kw) -> tuple[Run, TaskResult]:
    status = kw.pop("status", "SUCCESS")
    run = make_finished_run(job_name, **kw)
    result = make_result(job_name, task_id=run.task_id, status=status, worker="w1@host")
    return run, result


def make_schedule(name: str = "every minute", *, every: int = 1, last_run_ago=None, **kw):
    if "crontab" not in kw:
        kw["interval"], _ = IntervalSchedule.objects.get_or_create(every=every, period="minutes")
    kw.setdefault("task", "apps.demo.tasks.add")
    task = PeriodicTask.objects.create(name=name, **kw)
    if last_run_ago is not None:
        # date_changed is auto_now; both set in the past as if beat last ran back then.
        past = timezone.now() - last_run_ago
        PeriodicTask.objects.filter(pk=task.pk).update(last_run_at=past, date_changed=past)
        task.refresh_from_db()
    return task


def given_snapshot(*worker_names: str, broker_ok: bool = True, queues=None, error: str = ""):
    """Put a broker snapshot in the cache, as if the workers had just answered."""

    from apps.jobs import inspect, revalidating

    snap = inspect.Snapshot(
        taken_at=timezone.now(),
        broker_ok=broker_ok,
        error=error,
        workers=tuple(inspect.Worker(name, concurrency=4) for name in worker_names),
        queues=queues if queues is not None else ({"celery": 0} if broker_ok else {}),
    )
    # Fresh for the whole test: no thread replaces it with the real broker's answer.
    revalidating.store(inspect.CACHE_KEY, snap, 300, stored_at=time.time() + 300)
    return snap
