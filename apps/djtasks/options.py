"""From a Tasks API `Task` (priority, queue_name, run_after) to Celery's send options.

Priority. The Tasks API's priorities run from -100 to 100, larger sooner, default 0.
A Celery message with no priority is, on Redis, in the most urgent level (kombu reads
it as 0, and on Redis 0 is served first); on RabbitMQ it is the least urgent (0, larger
sooner, on queues declared with `x-max-priority`). The default priority 0 is therefore
sent with no priority at all, like every other Switchyard job, and only the side that
the broker can express moves:

- Redis (and kombu's other virtual transports): negative priorities go down.
  -1..-33 -> 3, -34..-66 -> 6, -67..-100 -> 9. kombu keeps one list per level
  (`priority_steps`, default [0, 3, 6, 9]: Switchyard's settings keep the default) and
  a worker empties the level-0 list of a queue before it reads level 3. Positive
  priorities are the same as 0: nothing on Redis runs before an unprioritised message.
- RabbitMQ: positive priorities go up, 1..100 -> 1..9 (ceil(p * 9 / 100)); negative
  ones are the same as 0.

Queue. The Tasks API's "default" queue is where Celery routes the task anyway
(`task_routes`, else `task_default_queue`); any other name is the Celery queue of
that name. Names are checked against the backend's QUEUES before anything is written.

run_after is Celery's `eta` (a worker holds the message until then). It must be a date
Switchyard accepts anywhere (apps/jobs/dates.py: 2000-01-01 to 2099-12-31, UTC) and a
time that exists on its zone's clock (not in the hour a zone skips when its clocks go
forward); otherwise the Tasks API's InvalidTask, as for a naive run_after.
"""

import math
from datetime import datetime
from typing import Any

from celery import current_app

from apps.jobs import dates

from .compat import DEFAULT_TASK_QUEUE_NAME, InvalidTask, Task
from .models import SendOptions

AMQP_SCHEMES = {"amqp", "amqps", "pyamqp", "librabbitmq"}


def celery_priority(priority: int) -> int | None:
    """The Celery priority for a Tasks API priority; None: send with no priority."""
    if _broker_scheme() in AMQP_SCHEMES:
        return math.ceil(priority * 9 / 100) if priority > 0 else None
    return 3 * math.ceil(-priority * 3 / 100) if priority < 0 else None


def _broker_scheme() -> str:
    url = current_app.conf.broker_url or ""
    return url.split("://", 1)[0].split("+", 1)[0].lower()


def celery_queue(queue_name: str) -> str | None:
    return None if queue_name == DEFAULT_TASK_QUEUE_NAME else queue_name


def check_run_after(run_after: datetime | None) -> None:
    """InvalidTask for a run_after outside the site's dates or that no clock shows."""
    if run_after is None or run_after.tzinfo is None:  # naive: the Tasks API refuses it
        return
    if error := dates.moment_error(run_after) or dates.nonexistent_error(run_after):
        raise InvalidTask(f"run_after: {error}")


def send_options(task: Task) -> dict[str, Any]:
    """Celery's apply_async options for one enqueue of `task`."""
    options: dict[str, Any] = {}
    if queue := celery_queue(task.queue_name):
        options["queue"] = queue
    if (priority := celery_priority(task.priority)) is not None:
        options["priority"] = priority
    if task.run_after is not None:
        options["eta"] = task.run_after
    return options


def needs_keeping(options: dict[str, Any]) -> bool:
    """Options a later send could not rebuild from the run record."""
    return "priority" in options or "eta" in options


def keep(task_id: str, options: dict[str, Any]) -> None:
    if needs_keeping(options):
        SendOptions.objects.create(
            task_id=task_id, priority=options.get("priority"), eta=options.get("eta")
        )


def kept(task_id: str) -> dict[str, int | datetime]:
    row = SendOptions.objects.filter(task_id=task_id).first()
    if row is None:
        return {}
    found = {"priority": row.priority, "eta": row.eta}
    return {name: value for name, value in found.items() if value is not None}


def forget(task_id: str) -> None:
    SendOptions.objects.filter(task_id=task_id).delete()
