"""Demo tasks written against Django's Tasks API: no Celery (and no Switchyard but the
`Range` bounds that tidy_up and echo_later declare).

Any reusable app can declare its background work like this. With Switchyard's backend
in TASKS, these run on Celery workers, show on /jobs/ and /runs/, and can be scheduled
in the admin. On Django 6, `from django.tasks import task` is the only change.
"""

import asyncio
from typing import Annotated

from django_tasks import TaskContext, task

# Bounds ride in `Annotated` (plain Python: any backend runs these unchanged); with
# Switchyard's they are checked at every door before a run is recorded.
from apps.jobs.params import Range


@task()
def greet(name: str, shout: bool = False) -> str:
    """Return a greeting for `name` (in capitals with `shout`)."""
    greeting = f"Hello, {name}!"
    return greeting.upper() if shout else greeting


@task()
def divide(x: float, y: float) -> float:
    """Return x / y; y = 0 fails, with its traceback on the run page."""
    return x / y


@task()
def tally(counts: dict, extra=None) -> int:
    """Sum the values of a JSON object (parameters the catalog cannot type take JSON)."""
    return sum(counts.values()) + sum(extra or [])


@task(priority=-50)
def tidy_up(days: Annotated[int, Range(1, 3650)] = 30) -> str:
    """Housekeeping that can wait: declared with a low priority."""
    return f"tidied up {days} days"


@task(takes_context=True)
def whoami(context: TaskContext, note: str = "") -> dict:
    """Return what the Tasks API tells a task about its own run."""
    return {
        "id": context.task_result.id,
        "attempt": context.attempt,
        "enqueued_at": context.task_result.enqueued_at.isoformat(),
        "note": note,
    }


@task()
async def echo_later(text: str, seconds: Annotated[float, Range(0, 60)] = 0.0) -> str:
    """An async task: the worker runs the coroutine to its end."""
    await asyncio.sleep(seconds)
    return text
