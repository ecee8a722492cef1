"""Send plans: Celery's own message building and sending, with the work that is the same
for every run of a schedule (beat) or of a job (dispatch) done once instead of once per
run.

`Task.apply_async` spends about half of its time (docs/performance.md, "Beat at
scale") on things that do not change between two runs of one schedule: five settings
read through Celery's layered configuration (tens of microseconds each, as Django's
settings are searched under several names), the task's execution options merged,
routing, the arguments checked against the task's signature, and a result object
nobody reads. A `SendPlan` does those once, and then per run calls the two functions
`apply_async` ends in: `app.amqp.create_task_message` and `app.amqp.send_task_message`.
The message (headers, properties, routing) and the publish signals, so every run is
recorded, are the ones `apply_async` produces; tests/scheduling/test_publishing.py
compares them. Routers of one's own (`task_routes`) still see every run; without them
routing only looks up the named or default queue, once per destination. Beat runs
inside no task, so there is no parent task whose ids a run would inherit.

Runs that Celery would build differently each time keep the full `apply_async`: a
schedule or task with an expiry (relative to the send time), a task that overrides
`apply_async` or `shadow_name`, pydantic arguments, eager mode, or arguments that fail
the signature check (so `apply_async` raises, and beat logs it, as before).

Dispatch (apps/jobs/dispatch.py: `start_run`, `start_runs`, a re-run, the sweeper) asks
`plan_for(app, job, queue)` for the plan of a job and queue, made once per process and
kept on the app's `amqp` (a new broker, a new `amqp`, new plans; a task whose options
Celery works out again, or task events turned on or off, a new plan), and sends each run's
own arguments with it (`SendPlan.send(..., args=, kwargs=)`) after `accepts()` checked
them as `apply_async` would. A run started from inside a task, or with options beyond a
queue (an ETA, a priority: the Tasks API), keeps `apply_async`, which gives the message
its parent's ids and those options.
"""

from dataclasses import dataclass
from typing import Any

from celery import Celery, Task

# Per-schedule options routing carries through unchanged.
CARRIED = ("headers", "argsrepr", "kwargsrepr")
# A routed plan's `options`: one empty dict for all of them, never written to.
ROUTED: dict[str, Any] = {}


@dataclass(frozen=True, slots=True)  # slots: beat keeps one per schedule
class SendPlan:
    """What `apply_async` would work out for every run of one schedule or job."""

    app: Celery
    task: Task | None
    name: str
    args: list
    kwargs: dict
    options: dict[str, Any]  # execution options before routing (only when `routed` is None)
    routed: dict[str, Any] | None  # the same, routed: None when routing is per run
    time_limit: float | None
    soft_time_limit: float | None
    ignore_result: bool | None
    sent_event: bool
    # What the plan was made from that Celery may change at run time: the task's cached
    # execution options (the very dict) and its ignore_result.
    exec_options: dict | None = None
    task_ignores_result: bool | None = None

    def current(self, task: Task | None) -> bool:
        """Whether `apply_async` would still work out what this plan holds: the same
        task, execution options and ignore_result, task events, and no eager mode."""
        conf = self.app.conf
        if task is not self.task or conf.task_always_eager:
            return False
        if conf.task_send_sent_event != self.sent_event:
            return False
        return task is None or (task._get_exec_options() is self.exec_options
                                and task.ignore_result == self.task_ignores_result)  # fmt: skip

    def send(self, producer, task_id: str, headers: dict | None = None,
             args: list | None = None, kwargs: dict | None = None, **extra) -> None:  # fmt: skip
        """Build and publish one run's message, as `apply_async` would; `args` and
        `kwargs`, if given, in place of the plan's (check them first: `accepts`)."""
        amqp = self.app.amqp
        args = self.args if args is None else args
        kwargs = self.kwargs if kwargs is None else kwargs
        if self.routed is not None:
            options = {**self.routed, **extra}
        else:
            options = amqp.router.route({**self.options, **extra}, self.name, args, kwargs,
                                        self.task)  # fmt: skip
        if headers is not None:
            options["headers"] = headers
        message = amqp.create_task_message(
            task_id, self.name, args, kwargs,
            reply_to=self.app.thread_oid, time_limit=self.time_limit,
            soft_time_limit=self.soft_time_limit, create_sent_event=self.sent_event,
            ignore_result=self.ignore_result, **options,
        )  # fmt: skip
        with producer.connection._reraise_as_library_errors():
            if not self.ignore_result:
                self.app.backend.on_task_call(producer, task_id)
            amqp.send_task_message(producer, self.name, message, **options)

    def accepts(self, args: list, kwargs: dict) -> bool:
        """Whether `apply_async`'s signature check lets these arguments through."""
        return self.task is None or _accepts(self.task, args, kwargs)


class Planner:
    """Makes the SendPlans of one scheduler, with the settings as they are now."""

    def __init__(self, app: Celery):
        self.app = app
        self.eager = app.conf.task_always_eager
        self.sent_event = app.conf.task_send_sent_event
        self._routed: dict[tuple, dict] = {}

    def plan(self, name: str, args: list | None, kwargs: dict | None,
             options: dict) -> SendPlan | None:  # fmt: skip
        """The plan for sending task `name` with these arguments and options (argsrepr
        and kwargsrepr included); None where Celery would build each run's message
        differently (then use apply_async). With `args` and `kwargs` None, the plan of
        runs that each bring their own (checked per run: `SendPlan.accepts`)."""
        task = self.app.tasks.get(name)
        if self.eager or (task is not None and not plain_task(task)):
            return None
        if args is not None and task is not None and not _accepts(task, args, kwargs):
            return None
        options = dict(options)
        exec_options = task._get_exec_options() if task is not None else None
        if task is not None:  # as apply_async: the task's own options, then the schedule's
            options = {**exec_options, **options}
            options.setdefault("ignore_result", task.ignore_result)
        if options.pop("expires", None) is not None or options.get("stamped_headers"):
            return None
        time_limit = options.pop("time_limit", None)
        soft_time_limit = options.pop("soft_time_limit", None)
        ignore_result = options.pop("ignore_result", None)
        routed = self._route(task, name, options)
        if routed is not None:
            options = ROUTED  # not read again: not kept (beat keeps a plan per schedule)
        return SendPlan(self.app, task, name, args, kwargs, options, routed, time_limit,
                        soft_time_limit, ignore_result, self.sent_event, exec_options,
                        task.ignore_result if task is not None else None)  # fmt: skip

    def _route(self, task: Task | None, name: str, options: dict) -> dict | None:
        """The routed options; None when task_routes has routers of its own, which then
        see every run. Without them routing depends on the destination alone."""
        router = self.app.amqp.router
        if router.routes:
            return None
        destination = {key: value for key, value in options.items() if key not in CARRIED}
        carried = {key: options[key] for key in CARRIED if key in options}
        try:
            key = tuple(sorted(destination.items()))
            routed = self._routed.get(key)
        except TypeError:  # an option that is no plain value: route it on its own
            key, routed = None, None
        if routed is None:
            routed = router.route(dict(destination), name, (), {}, task)
            if key is not None:
                self._routed[key] = routed
        return {**routed, **carried}


def plain_task(task: Task) -> bool:
    """Celery's own apply_async and shadow_name, and no pydantic arguments."""
    cls = type(task)
    if cls.apply_async is not Task.apply_async or cls.shadow_name is not Task.shadow_name:
        return False
    if task._dump_pydantic_arguments is not None:
        return False
    limits = task.soft_time_limit, task.time_limit
    return not (all(limits) and limits[0] > limits[1])


def _accepts(task: Task, args: list | None, kwargs: dict | None) -> bool:
    """Arguments apply_async's signature check accepts."""
    check_arguments = getattr(task, "__header__", None) if task.typing else None
    if check_arguments is not None:
        try:
            check_arguments(*(args or ()), **(kwargs or {}))
        except TypeError:
            return False
    return True


# Dispatch's plans: one per job and queue, kept on the app's `amqp` --------------------

PLANS_AT_MOST = 500  # (job, queue) pairs kept; a caller may name any queue


def plan_for(app: Celery, name: str, queue: str) -> SendPlan | None:
    """The plan for runs of task `name` sent to `queue` ("" for the task's own route),
    each with its own arguments; None where `apply_async` must build each message."""
    if app.current_worker_task is not None:
        return None  # a run started by a task: apply_async gives it its parent's ids
    plans = app.amqp.__dict__.setdefault("switchyard_plans", {})
    key = (name, queue)
    plan = plans.get(key, _UNPLANNED)  # one lookup: another thread may clear the dict
    if plan is _UNPLANNED or (plan is not None and not plan.current(app.tasks.get(name))):
        if len(plans) >= PLANS_AT_MOST:
            plans.clear()
        plan = Planner(app).plan(name, None, None, {"queue": queue} if queue else {})
        plans[key] = plan
    return plan


_UNPLANNED = object()
