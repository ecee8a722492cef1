"""Declaring a pipeline: catalog jobs composed in sequence, in parallel and joined.

    @pipeline("Sum of squares", group="Demo")
    def sum_of_squares(count: Annotated[int, Range(1, 1000)] = 10, offset: int = 0):
        return [
            Each("square", square, [{"x": i + offset} for i in range(count)]),
            Step("total", total, numbers=Result("square")),
        ]

The function's typed parameters are the pipeline's (its form, JSON schema and CLI, as
for a job); called with their values it returns the plan: stages run one after another
(a Celery chain); a stage of several steps (`Parallel`, `Each`) runs them at once (a
group), and the stage after it waits for all of them (a chord). A step's parameter is a
fixed value, one of the pipeline's parameters (just use it), or `Result("step")`: that
step's result, or the list of a stage's results in order (read when the step starts).

The pipeline is a Celery task and a catalog job like any other (started from /jobs/, the
API, `manage.py jobs run`, scheduled in the admin); its task builds the canvas.
"""

import functools
import inspect
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from celery import Task

from apps.jobs import catalog

NAME = re.compile(r"^[A-Za-z0-9_.-]{1,80}$")
MAX_STEPS = 5000
RESULT_KEY = "$result"


class PlanError(ValueError):
    """A plan that cannot run: an unknown job, a bad or repeated step name, a Result of
    a step that does not come before."""


@dataclass(frozen=True)
class Result:
    """The stored result of an earlier step (or the list of an earlier stage's)."""

    step: str

    def as_json(self) -> dict:
        return {RESULT_KEY: self.step}


@dataclass(frozen=True)
class Step:
    name: str
    job: str | Task
    params: Mapping[str, Any] = field(default_factory=dict)

    def __init__(self, name: str, job: str | Task, /, **params: Any):
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "job", job)
        object.__setattr__(self, "params", params)

    @property
    def job_name(self) -> str:
        return self.job if isinstance(self.job, str) else self.job.name


@dataclass(frozen=True)
class Stage:
    """Steps that run at once; `name` is what a Result of the whole stage refers to."""

    name: str
    steps: tuple[Step, ...]


def Parallel(name: str, *steps: Step) -> Stage:
    return Stage(name, tuple(steps))


def Each(name: str, job: str | Task, items: Iterable[Mapping[str, Any]]) -> Stage:
    """One step of `job` per item (its parameters): name[0], name[1], ..."""
    return Stage(name, tuple(Step(f"{name}[{i}]", job, **item) for i, item in enumerate(items)))


@dataclass(frozen=True)
class Pipeline:
    name: str
    title: str
    plan_of: Callable[..., list] = field(compare=False, repr=False)

    def plan(self, values: Mapping[str, Any]) -> list[Stage]:
        """The stages for these (typed) parameter values, checked."""
        stages = plan_stages(self.plan_of(**values))
        check_plan(stages)
        return stages


def plan_stages(plan: Iterable[Step | Stage]) -> list[Stage]:
    """A plan function's list, each lone step a stage of its own."""
    return [s if isinstance(s, Stage) else Stage(s.name, (s,)) for s in plan]


def check_plan(stages: list[Stage]) -> None:
    seen: set[str] = set()
    count = 0
    for stage in stages:
        if not stage.steps:
            raise PlanError(f"stage {stage.name!r} has no steps")
        for step in stage.steps:
            _check_step(step, seen)
            count += 1
        seen.update(s.name for s in stage.steps)
        if all(s.name.startswith(f"{stage.name}[") for s in stage.steps):
            seen.add(stage.name)  # an Each: Result(stage) is the list of its results
    if count > MAX_STEPS:
        raise PlanError(f"{count} steps; at most {MAX_STEPS}")


def _check_step(step: Step, seen: set[str]) -> None:
    if not NAME.fullmatch(step.name.replace("[", "").replace("]", "")) or step.name in seen:
        raise PlanError(f"step name {step.name!r} is not valid or not unique")
    if catalog.get_job(step.job_name) is None:
        raise PlanError(f"step {step.name!r}: no catalog job {step.job_name!r}")
    for value in step.params.values():
        if isinstance(value, Result) and value.step not in seen:
            raise PlanError(f"step {step.name!r}: no earlier step {value.step!r}")


_PIPELINES: dict[str, Pipeline] = {}


def get_pipeline(name: str) -> Pipeline | None:
    return _PIPELINES.get(name)


def pipeline(title: str, *, group: str = "Pipelines", queue: str | None = None):
    """Register a plan function as a pipeline: a catalog job whose task starts it."""

    def decorate(fn: Callable[..., list]) -> Task:
        name = f"{fn.__module__}.{fn.__name__}"

        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def start(*args: Any, **kwargs: Any) -> None:
            from .running import start_from_task

            start_from_task(_PIPELINES[name], dict(signature.bind(*args, **kwargs).arguments))

        start.__signature__ = signature
        task = catalog.job(title, group=group, queue=queue, cancellable=True, name=name)(start)
        _PIPELINES[name] = Pipeline(name, title, fn)
        return task

    return decorate
