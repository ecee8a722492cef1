"""Publish N no-op tasks from a process of its own, as a caller (web, script) would.

    python -m bench.baselines.fill switchyard|stock|stock-reuse COUNT QUEUE
    python -m bench.baselines.fill raw|raw-defaults COUNT QUEUE BROKER_URL RESULT_BACKEND_URL

Switchyard's and stock's apps read their broker and database from the environment
(project.settings); Switchyard records a run for each task as it is published. Prints
{"seconds": ...}, the time publishing took.
"""

import json
import sys
import time

from celery import Celery


def load_app(kind: str, urls: list[str]) -> Celery:
    if kind == "raw":
        from .raw_celery import configure

        return configure(*urls)
    if kind == "raw-defaults":
        from .raw_defaults import configure

        return configure(*urls)
    import django

    django.setup()
    if kind == "switchyard":
        from project import celery_app

        return celery_app
    from .stock_celery import app

    return app


def publish(app: Celery, count: int, queue: str, task: str = "bench.noop") -> float:
    started = time.perf_counter()
    for _ in range(count):
        app.send_task(task, queue=queue)
    return time.perf_counter() - started


def main(argv: list[str]) -> None:
    kind, count, queue, *urls = argv
    app = load_app(kind, urls)
    print(json.dumps({"seconds": publish(app, int(count), queue)}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
