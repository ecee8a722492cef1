from apps.control.rules import Actor
from apps.jobs.models import Run
from project import celery_app
from tests.helpers import wait_for

ADD = "apps.demo.tasks.add"


def cli() -> Actor:
    return Actor.cli()


def send_adds(queue: str, count: int) -> list[Run]:
    """Messages straight to the queue (recorded as shell runs, like add.delay)."""
    task = celery_app.tasks[ADD]
    ids = [task.apply_async((i, 1), queue=queue).id for i in range(count)]
    return wait_for(lambda: _runs(ids) if len(_runs(ids)) == count else None)


def _runs(task_ids: list[str]) -> list[Run]:
    return list(Run.objects.filter(task_id__in=task_ids))


def active_queues(worker: str) -> list[str] | None:
    """The queues the worker consumes now; None while it does not answer."""
    replies = celery_app.control.inspect(destination=[worker], timeout=1).active_queues()
    if not replies or worker not in replies:
        return None
    return [q["name"] for q in replies[worker]]
