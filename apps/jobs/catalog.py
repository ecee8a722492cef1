"""The job catalog: Celery tasks registered with a title, typed parameters and rules.

    @job(title="Add two numbers")
    def add(x: int, y: int) -> int: ...

`add` is still an ordinary Celery task (`.delay()`, beat, `celery call`), named by its
Celery task name, which is also its name in the catalog, URLs, CLI and API.
"""

import functools
import inspect
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from celery import Task, current_app, current_task, shared_task, states
from celery.exceptions import Ignore
from django import forms
from django.core.exceptions import ValidationError

from . import current_run, json_values
from . import params as P
from .progress import JobCancelled


@dataclass(frozen=True)
class Job:
    name: str
    title: str
    description: str
    params: tuple[P.Param, ...]
    group: str = "General"
    queue: str | None = None
    cancellable: bool = False
    idempotent: bool = True
    # False for a job that acts as the person who starts it (a schedule has none).
    schedulable: bool = True
    check: Callable[..., None] | None = field(default=None, compare=False, repr=False)
    task: Task | None = field(default=None, compare=False, repr=False)

    @property
    def permission(self) -> str:
        return f"jobs.{self.permission_codename}"

    @property
    def permission_codename(self) -> str:
        return f"run_{self.name}"[:100]

    def form_class(self) -> type[forms.Form]:
        return _form_class(self)

    def json_schema(self) -> dict:
        return P.json_schema(self.params)


@functools.cache
def _form_class(job: Job) -> type[forms.Form]:
    """Built once per job: a form class is a template (each form copies its fields)."""
    fields = {p.name: P.form_field(p) for p in job.params}
    if job.check:
        fields["clean"] = _clean_with(job)
    return type(f"{job.name.rsplit('.', 1)[-1].title()}Form", (forms.Form,), fields)


class SharedFields(dict):
    """A form's fields that every instance uses as they are: Django deep-copies a form's
    fields for each instance (so that one may change its own), which was a sixth of a
    `start_run` (issue 15). Only for forms that check values and are never rendered:
    cleaning reads the fields and never changes them."""

    def __deepcopy__(self, memo) -> "SharedFields":
        return self


@functools.cache
def _checker_class(job: Job) -> type[forms.Form]:
    """The job's form for `clean_parameters`: the same fields and checks, shared."""
    form_class = _form_class(job)
    checker = type(form_class.__name__, (form_class,), {})
    checker.base_fields = SharedFields(form_class.base_fields)
    return checker


def _clean_with(job: Job) -> Callable:
    """The job's check of its values together (once each is valid on its own)."""

    def clean(form: forms.Form) -> dict:
        data = forms.Form.clean(form)
        if not form.errors:
            try:
                job.check(**data)
            except ParameterError as error:
                raise ValidationError(error.errors) from None
        return data

    return clean


_CATALOG: dict[str, Job] = {}


def job(
    title: str,
    *,
    group: str = "General",
    queue: str | None = None,
    cancellable: bool = False,
    idempotent: bool = True,
    schedulable: bool = True,
    check: Callable[..., None] | None = None,
    **task_options: Any,
) -> Callable[[Callable], Task]:
    """Register a function as a Celery task and a catalog job.

    Idempotent jobs are acknowledged late and rejected (so redelivered) when their
    worker dies; others are acknowledged on receipt and marked failed instead.
    `check(**values)`, if given, judges the values together and raises ParameterError
    naming the parameter (bounds of one value are declared in the signature).
    `schedulable=False`: a job that acts as the person who starts it, which a schedule
    (it has none) may not run.
    """

    def decorate(fn: Callable) -> Task:
        job_params = P.params_from_signature(fn)
        if idempotent:
            task_options.setdefault("acks_late", True)
            task_options.setdefault("reject_on_worker_lost", True)
        if queue:
            task_options.setdefault("queue", queue)
        made: list[Job] = []  # the job, once made: its task checks messages by it
        task = shared_task(**task_options)(_typed(fn, lambda: made[0]))
        made.append(
            job := Job(
                name=task.name,
                title=title,
                description=inspect.cleandoc(fn.__doc__ or ""),
                params=job_params,
                group=group,
                queue=queue,
                cancellable=cancellable,
                idempotent=idempotent,
                schedulable=schedulable,
                check=check,
                task=task,
            )
        )
        _CATALOG[task.name] = job
        return task

    return decorate


def _typed(fn: Callable, job_of: Callable[[], Job]) -> Callable:
    """Turn the JSON values of a Celery message back into the annotated types, by the
    rule of every door (`message_values`): a message from anywhere (an old schedule row,
    `celery call`, `.delay()`) cannot run a job with values the doors refuse."""
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def run(*args, **kwargs):
        task = current_task
        current = current_run.of(task.request) if task else None
        if current is not None and current.skip:
            _note_skipped_chord_part(task)
            raise Ignore()
        if current is not None:
            for fill in _fillers:
                kwargs = fill(task.request, kwargs)
        bound = signature.bind(*args, **kwargs)
        bound.arguments.update(message_values(job_of(), bound.arguments))
        try:
            return fn(*bound.args, **bound.kwargs)
        except JobCancelled:
            _mark_cancelled(task)
            raise Ignore() from None

    return run


# Apps above jobs may fill a job's keyword arguments just before its body runs: each
# filler takes the task's request and the kwargs and returns them, filled (apps.pipelines:
# a step's parameter taken from an earlier step's stored result).
_fillers: list[Callable[[Any, dict], dict]] = []


def fill_arguments_with(filler: Callable[[Any, dict], dict]) -> None:
    if filler not in _fillers:
        _fillers.append(filler)


def _note_skipped_chord_part(task: Task) -> None:
    """A chord member delivered again after its run finished (its worker was lost before
    the message was acknowledged) is not run twice; but the chord may not have counted
    it yet, so the result backend looks at the chord again (worker/backend.py)."""
    note = getattr(task.backend, "recheck_chord", None)
    if note is not None and getattr(task.request, "chord", None):
        note(task.request)


def _mark_cancelled(task: Task) -> None:
    from .models import Run, State

    current = current_run.of(task.request)
    Run.objects.filter(task_id=task.request.id).finish(
        State.CANCELLED, note="Cancelled while running.",
        attempt=current.attempt if current is not None else None,
    )  # fmt: skip
    task.update_state(state=states.REVOKED, meta={"reason": "cancelled"})


def add(entry: Job) -> None:
    """Register a job built elsewhere: apps.djtasks adds the Tasks API's `@task`s."""
    _CATALOG[entry.name] = entry


def all_jobs() -> list[Job]:
    return sorted(_CATALOG.values(), key=lambda j: (j.group, j.title))


def queue_names() -> list[str]:
    """The default queue, queues configured in Celery, and queues named by catalog jobs."""
    conf = current_app.conf
    names = {conf.task_default_queue}
    names.update(q.name for q in conf.task_queues or ())
    names.update(job.queue for job in all_jobs() if job.queue)
    return sorted(names)


# The longest queue name queue control stores (apps.control's QueuePause.queue).
MAX_QUEUE_NAME = 200


def could_be_queue(name: str) -> bool:
    """A name the broker could take for a queue, an exchange or a routing key (queue
    control, schedules): at most MAX_QUEUE_NAME characters, no control characters."""
    return len(name) <= MAX_QUEUE_NAME and not any(unicodedata.category(c) == "Cc" for c in name)


def get_job(name: str) -> Job | None:
    return _CATALOG.get(name)


class ParameterError(ValueError):
    """Parameters refused before dispatch; `errors` maps each parameter to messages."""

    def __init__(self, errors: dict[str, list[str]]):
        self.errors = errors
        super().__init__(self.one_line())

    def one_line(self) -> str:
        return "; ".join(f"{name}: {' '.join(msgs)}" for name, msgs in self.errors.items())


def clean_parameters(job: Job, data: Mapping[str, Any], *, text: bool = False) -> dict[str, Any]:
    """Validate submitted values into JSON-safe kwargs: the one rule of every door.

    `data` holds JSON values (the API, the Tasks API, a stored run or schedule, the web
    form's typed values), each taken as it is and of a JSON type that fits its parameter;
    `text=True`: text typed by a person (`key=value` on a command line), read as the form
    reads it. Blank is the default (params.given_value).
    """
    known = {p.name for p in job.params}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ParameterError({name: ["unknown parameter"] for name in unknown})
    values = _form_data(job, data, text)
    form = _checker_class(job)(data=values)
    if not form.is_valid():
        raise ParameterError({k: [str(m) for m in v] for k, v in form.errors.items()})
    # None given (a blank Optional, a default of None) stays None, not a field's "".
    cleaned = {name: None if values.get(name) is None else P.to_json(value)
               for name, value in form.cleaned_data.items()}  # fmt: skip
    refused = {name: [reason] for name, value in cleaned.items()
               if (reason := json_values.problem(value))}  # fmt: skip
    if refused:
        raise ParameterError(refused)
    return cleaned


def message_values(job: Job, values: Mapping[str, Any]) -> dict[str, Any]:
    """The worker's last look at a message's values for the job's declared parameters:
    `clean_parameters` (JSON data, as the API's), then typed as the job's function takes
    them (dates, decimals...). ParameterError (a ValueError) names each value refused."""
    declared = {p.name: p for p in job.params}
    given = {name: value for name, value in values.items() if name in declared}
    cleaned = clean_parameters(job, given)
    return {name: P.from_json(declared[name], cleaned[name]) for name in given}


def _form_data(job: Job, data: Mapping[str, Any], text: bool) -> dict[str, Any]:
    """Each value as its form field takes it (omitted or blank: the default); every value
    that cannot be is named in one ParameterError."""
    merged = {p.name: P.to_json(p.default) for p in job.params if p.default is not None}
    errors = {}
    for p in job.params:
        if p.name not in data:
            continue
        try:
            merged[p.name] = P.given_value(p, data[p.name], text=text)
        except ValueError as error:
            errors[p.name] = [str(error)]
    if errors:
        raise ParameterError(errors)
    return merged


__all__ = ["Job", "ParameterError", "ValidationError", "all_jobs", "clean_parameters",
           "get_job", "job"]  # fmt: skip
