"""Each Tasks API `@task` as a Celery task and a catalog job.

A task is registered the moment it is declared: the Tasks API checks every `Task` with
its backend (`validate_task`), and Switchyard's backend registers it then. Its Celery
task and catalog name is the function's module path (`apps.demo.tasks_api.tasks.greet`),
a public name like any Celery task name: renaming the function orphans its schedules.

One Celery task per `@task` (rather than one generic task carrying the path) keeps
every part of Switchyard that goes by task name working unchanged: the run record and
/runs/ show the task's own name, the catalog, permissions, schedules and the CLI find
it, the sweeper re-sends it by name, and a worker that does not know it refuses it.
"""

import inspect
import logging
import typing

from celery import Task as CeleryTask
from celery import shared_task
from celery.exceptions import Ignore
from django import forms
from django.apps import apps
from django.core.exceptions import ValidationError
from django.forms.fields import InvalidJSONInput, JSONString

from apps.jobs import catalog, json_values
from apps.jobs import params as P
from apps.jobs.catalog import ParameterError

from . import options, results
from .compat import Task, TaskContext, normalize_json, task_finished, task_started

log = logging.getLogger(__name__)

# Module path -> the Task as declared by `@task` (its defaults: priority, queue).
_DECLARED: dict[str, Task] = {}
# The enqueue path passes every option itself; any other send (web, API, CLI, the
# sweeper, a resend) fills in the declared and the stored ones.
FROM_ENQUEUE = "_switchyard_from_enqueue"


class JSONValue:
    """The kind of a parameter whose annotation the catalog cannot type: any JSON
    value (JSON text in a form or on the command line, parsed once; a JSON value as it
    is from the API, the Tasks API and a stored run or schedule: a string stays a string)."""

    takes_objects = True
    json_type: type | None = None  # what the annotation asks for: `dict`, `list`
    described = "a JSON value"

    @classmethod
    def problem(cls, value) -> str | None:
        if cls.json_type is None or isinstance(value, cls.json_type):
            return None
        return f"expected {cls.described}, got {P.json_type(value)}"


class JSONObject(JSONValue):
    """`counts: dict`: a JSON object."""

    json_type, described = dict, "a JSON object"


class JSONArray(JSONValue):
    """`items: list`: a JSON array."""

    json_type, described = list, "a JSON array"


class JSONTextField(forms.JSONField):
    """JSON typed in a text box or on a command line, read by the rule of what a JSON
    value may be (apps/jobs/json_values.py): NaN, 1e309, a lone surrogate or nesting too
    deep is a form error, not a 500 when the run is stored. A value that is not text (or
    is a JSONString: a string given as data) is a JSON value already, taken as it is."""

    widget = forms.Textarea(attrs={"rows": 3})

    def __init__(self, *, kind: type[JSONValue] = JSONValue, **options):
        self.kind = kind
        super().__init__(**options)

    def to_python(self, value):
        if self.disabled or not isinstance(value, str) or isinstance(value, JSONString):
            return value  # {} and [] are values, not blanks
        if value in self.empty_values:
            return None
        try:
            converted = json_values.loads(value)
        except json_values.NotStorable as error:
            raise ValidationError(f"Enter a valid JSON value: {error}.", code="invalid") from None
        except ValueError:
            raise ValidationError(self.error_messages["invalid"], code="invalid") from None
        return JSONString(converted) if isinstance(converted, str) else converted

    def validate(self, value):
        if value is None and self.required:
            raise ValidationError(self.error_messages["required"], code="required")
        if value is not None and (reason := self.kind.problem(value)):
            raise ValidationError(reason, code="invalid")

    def bound_data(self, data, initial):
        """The value typed, shown again as it was when it is not JSON by the rule (Django's
        own would read NaN, and fail on deep nesting with a RecursionError)."""
        if self.disabled or not isinstance(data, str):
            return super().bound_data(data, initial)
        try:
            return json_values.loads(data)
        except ValueError:
            return InvalidJSONInput(data)

    def prepare_value(self, value):
        if value is None:
            return ""
        if isinstance(value, InvalidJSONInput):
            return value
        # A stored value from before the rule may hold a lone surrogate: not encodable.
        return super().prepare_value(json_values.printable(value))


def _json_field(kind: type[JSONValue]):
    def build(**options) -> JSONTextField:
        label = f"{options.pop('label', '')} (takes JSON)".strip()
        return JSONTextField(kind=kind, label=label, help_text="takes JSON", **options)

    return build


def _register_json_kind() -> None:
    P.FIELD_BUILDERS.setdefault(JSONValue, _json_field(JSONValue))
    P.FIELD_BUILDERS.setdefault(JSONObject, _json_field(JSONObject))
    P.FIELD_BUILDERS.setdefault(JSONArray, _json_field(JSONArray))
    P._SCHEMA.setdefault(JSONValue, {"description": "any JSON value"})
    P._SCHEMA.setdefault(JSONObject, {"type": "object"})
    P._SCHEMA.setdefault(JSONArray, {"type": "array"})


_register_json_kind()


def declared(name: str) -> Task | None:
    return _DECLARED.get(name)


def register(task: Task) -> None:
    """Make `task` a Celery task and a catalog job, once per function."""
    name = task.module_path
    if name in _DECLARED:
        return
    # First, so that a default its parameter refuses (a TypeError) registers nothing:
    # importing the module again fails again.
    params = job_params(task.func, task.takes_context)
    _DECLARED[name] = task
    task_options = {"name": name, "base": TasksApiCeleryTask, "bind": True, "acks_late": True,
                    "reject_on_worker_lost": True, "django_task_name": name}  # fmt: skip
    if queue := options.celery_queue(task.queue_name):
        # As `@job(queue=...)` does: every send (web, API, sweeper) routes there.
        task_options["queue"] = queue
    celery_task = shared_task(**task_options)(run_task)
    catalog.add(catalog_job(task, celery_task, params))


def catalog_job(task: Task, celery_task: CeleryTask, params: tuple[P.Param, ...]) -> catalog.Job:
    func = task.func
    return catalog.Job(
        name=task.module_path,
        title=func.__name__.replace("_", " ").strip().capitalize(),
        description=inspect.cleandoc(func.__doc__ or ""),
        params=params,
        group=_group(func),
        queue=options.celery_queue(task.queue_name),
        task=celery_task,
    )


def _group(func) -> str:
    app = apps.get_containing_app_config(func.__module__)
    return str(app.verbose_name) if app else "Tasks API"


def job_params(func, takes_context: bool) -> tuple[P.Param, ...]:
    """Typed like a `@job`'s parameters where the annotation allows; JSON otherwise
    (no annotation, or one the catalog has no field for)."""
    try:
        hints = typing.get_type_hints(func, include_extras=True)  # keep Range, MaxLength
    except Exception:  # an unresolvable annotation: every parameter takes JSON
        hints = {}
    parameters = list(inspect.signature(func).parameters.values())[1 if takes_context else 0 :]
    return tuple(
        _typed_param(p, hints[p.name]) if p.name in hints else _json_param(p)
        for p in parameters
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    )


def _typed_param(parameter: inspect.Parameter, hint) -> P.Param:
    """The catalog's parameter for the annotation, as for a `@job`; JSON only for an
    annotation the catalog cannot type. A default the typed parameter refuses (outside
    its bounds, NaN, infinite) is a TypeError at import, as for a `@job`: not a reason
    to take any JSON value instead."""
    try:
        _param_of(parameter.replace(default=inspect.Parameter.empty), hint)
    except TypeError:  # no field for this annotation
        return _json_param(parameter, hint)
    return _param_of(parameter, hint)


def _param_of(parameter: inspect.Parameter, hint) -> P.Param:
    def stub(): ...

    stub.__signature__ = inspect.Signature([parameter.replace(annotation=hint)])
    stub.__annotations__ = {parameter.name: hint}
    return P.params_from_signature(stub)[0]


def _json_param(parameter: inspect.Parameter, hint=None) -> P.Param:
    required = parameter.default is inspect.Parameter.empty
    origin = typing.get_origin(hint) or hint
    kind = JSONObject if origin is dict else JSONArray if origin is list else JSONValue
    return P.Param(parameter.name, kind, required, None if required else parameter.default)


class TasksApiCeleryTask(CeleryTask):
    """The Celery side of one `@task`: sends carry its priority and earliest start."""

    django_task_name = ""

    def apply_async(self, args=None, kwargs=None, task_id=None, **send_options):
        if not send_options.pop(FROM_ENQUEUE, False):
            send_options = {**self._declared_options(), **options.kept(task_id), **send_options}
        return super().apply_async(args, kwargs, task_id=task_id, **send_options)

    def _declared_options(self) -> dict:
        task = declared(self.django_task_name)
        priority = options.celery_priority(task.priority) if task else None
        return {} if priority is None else {"priority": priority}


def run_task(self: TasksApiCeleryTask, *args, **kwargs):
    """Run one `@task` on a worker, with the Tasks API's signals and context."""
    if getattr(self.request, "switchyard_skip", False):
        raise Ignore()  # cancelled before it started, or a duplicate of a finished run
    task = declared(self.django_task_name)
    args, kwargs = _typed_arguments(task, args, kwargs)
    result = results.running(self.request, task)
    sender = type(task.get_backend())
    task_started.send(sender, task_result=result)
    try:
        value = normalize_json(_call(task, result, args, kwargs))
    except BaseException as exc:
        results.mark_failed(result, exc)
        task_finished.send(sender, task_result=result)
        raise
    finally:
        _forget_options(self.request)
    results.mark_succeeded(result, value)
    task_finished.send(sender, task_result=result)
    return value


def _call(task: Task, result, args, kwargs):
    if task.takes_context:
        return task.call(TaskContext(task_result=result), *args, **kwargs)
    return task.call(*args, **kwargs)


# A call's arguments, checked at enqueue and again in the worker ------------------------

_VARIADIC = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


class InvalidArguments(ParameterError, TypeError):
    """A call the task's parameters refuse; `errors` names each bad one. A ParameterError
    (a ValueError) as any refused parameters are, and a TypeError as a Python call with
    the wrong arguments is: `except TypeError` and `except ValueError` both catch it."""


def checked_arguments(task: Task, args: list, kwargs: dict) -> tuple[list, dict]:
    """An enqueue's arguments, refused (InvalidArguments) unless they bind to the task's
    signature and pass the catalog's rule for its parameters (`clean_parameters`: types,
    required ones, declared bounds), as at every other door. They stay where they were
    given; each value as given, or as the rule read it where that differs (the text
    "false" for a bool goes as false, which the task would otherwise take as true)."""
    signature = _signature(task)
    named = _bind(signature, args, kwargs)
    job = catalog.get_job(task.module_path)
    if job is None:
        return args, kwargs
    try:
        cleaned = catalog.clean_parameters(job, named)
    except ParameterError as error:
        raise InvalidArguments(error.errors) from None
    read = {name: value if value == cleaned[name] else cleaned[name]
            for name, value in named.items() if name in cleaned}  # fmt: skip
    names = _positional(signature)  # values past them (a `*args`) go as given
    args = [read.get(names[i], value) if i < len(names) else value for i, value in enumerate(args)]
    return args, {name: read.get(name, value) for name, value in kwargs.items()}


def _signature(task: Task) -> inspect.Signature:
    """What a caller passes: the function's parameters but a context (given by the worker)."""
    signature = inspect.signature(task.func)
    parameters = list(signature.parameters.values())[1 if task.takes_context else 0 :]
    return signature.replace(parameters=parameters)


def _bind(signature: inspect.Signature, args: list, kwargs: dict) -> dict:
    """The named parameters' values, as Python would bind the call (a required one left
    out is for the catalog's rule to name); a call Python refuses is refused by name."""
    try:
        bound = signature.bind_partial(*args, **kwargs)
    except TypeError as error:
        raise InvalidArguments(_binding_errors(signature, args, kwargs, error)) from None
    kinds = {name: p.kind for name, p in signature.parameters.items()}
    return {name: value for name, value in bound.arguments.items() if kinds[name] not in _VARIADIC}


def _positional(signature: inspect.Signature) -> list[str]:
    return [name for name, p in signature.parameters.items()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]  # fmt: skip


def _binding_errors(signature, args, kwargs, error: TypeError) -> dict[str, list[str]]:
    kinds = {p.kind for p in signature.parameters.values()}
    positional = _positional(signature)
    errors = {}
    if len(args) > len(positional) and inspect.Parameter.VAR_POSITIONAL not in kinds:
        errors["args"] = [
            f"{len(args)} positional arguments given, at most {len(positional)} taken"
        ]
    for name in kwargs:
        if name in positional[: len(args)]:
            errors[name] = ["given twice, by position and by name"]
        elif name not in signature.parameters and inspect.Parameter.VAR_KEYWORD not in kinds:
            errors[name] = ["unknown parameter"]
    return errors or {"args": [str(error)]}


def _typed_arguments(task: Task, args, kwargs: dict) -> tuple[tuple, dict]:
    """The worker's last look at a message from anywhere (an old schedule row, `celery
    call`, a run recorded around enqueue): the arguments, positional ones too, bound to
    the task's signature (TypeError if they do not fit) and turned from JSON back to the
    annotated types (dates, decimals...) within their declared bounds (ValueError naming
    the parameter), before the task's code runs, as a `@job`'s are."""
    job = catalog.get_job(task.module_path)
    bound = _signature(task).bind(*args, **kwargs)
    if job is not None:
        bound.arguments.update(catalog.message_values(job, bound.arguments))
    return bound.args, bound.kwargs


def _forget_options(request) -> None:
    """Stored send options exist only for messages sent with a priority or an eta."""
    if request.eta or (request.delivery_info or {}).get("priority"):
        options.forget(request.id)
