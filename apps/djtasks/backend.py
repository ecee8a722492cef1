"""Switchyard as a backend of Django's Tasks API.

    TASKS = {"default": {"BACKEND": "apps.djtasks.backend.CeleryBackend"}}

Every `@task` of every installed app then runs on Celery workers, through the same
path as Switchyard's own jobs: `enqueue` records a run (`apps.jobs.dispatch`) and
publishes it when the transaction commits; a broker that is down leaves the run
"waiting to be sent" for the sweeper. Results are read back from the run record.
"""

from django.db import transaction
from django.utils.module_loading import import_string

from apps.jobs import json_values
from apps.jobs.dispatch import record_and_send
from apps.jobs.models import Run, Source

from . import options, registry, results
from .compat import (
    BaseTaskBackend,
    Task,
    TaskResult,
    TaskResultDoesNotExist,
    normalize_json,
    task_enqueued,
)

# Who a Tasks API enqueue is from, on /runs/ (the API carries no user).
REQUESTED_BY = "Tasks API"


class CeleryBackend(BaseTaskBackend):
    supports_defer = True
    supports_async_task = True  # run with async_to_sync on the worker
    supports_get_result = True
    supports_priority = True

    def validate_task(self, task: Task) -> None:
        super().validate_task(task)
        options.check_run_after(task.run_after)
        registry.register(task)

    def enqueue(self, task: Task, args, kwargs) -> TaskResult:
        self.validate_task(task)
        send = options.send_options(task)
        if options.needs_keeping(send):
            # Stored before the publish (on commit), so a worker that ends the run
            # finds the row it deletes.
            with transaction.atomic():
                run = _record(task, args, kwargs, send)
                options.keep(run.task_id, send)
        else:
            run = _record(task, args, kwargs, send)
        result = results.from_run(run, task, self.alias)
        task_enqueued.send(type(self), task_result=result)
        return result

    def get_result(self, result_id: str) -> TaskResult:
        result_id = str(result_id)
        if "\x00" in result_id:  # no task id holds one; PostgreSQL refuses it in a query
            raise TaskResultDoesNotExist(result_id)
        run = Run.objects.filter(task_id=result_id).first()
        task = run and _declared(run.job_name)
        if task is None:
            raise TaskResultDoesNotExist(result_id)
        return results.from_run(run, task, self.alias)


def _record(task: Task, args, kwargs, send: dict) -> Run:
    """Nothing is recorded for arguments that are not JSON (TypeError, as the Tasks API
    says), that no run record can store (NotStorable, a ValueError: NaN, infinity, a
    lone surrogate) or that the task's parameters refuse (registry.InvalidArguments: too
    many, unknown, missing, of the wrong type or outside the declared bounds)."""
    kwargs, args = normalize_json(kwargs), normalize_json(list(args))
    json_values.check([args, kwargs])
    args, kwargs = registry.checked_arguments(task, args, kwargs)
    return record_and_send(
        task.module_path, kwargs, args=args,
        source=Source.TASKS_API, label=REQUESTED_BY, options={**send, registry.FROM_ENQUEUE: True},
    )  # fmt: skip


def _declared(name: str) -> Task | None:
    """The `@task` a run is of, importing its module if this process has not yet."""
    task = registry.declared(name)
    if task is None:
        try:
            found = import_string(name)
        except ImportError:
            return None
        task = found if isinstance(found, Task) else None
    return task
