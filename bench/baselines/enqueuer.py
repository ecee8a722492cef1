"""Enqueue N tasks from a process of its own, timing each call (bench.enqueue).

    python -m bench.baselines.enqueuer raw COUNT BROKER_URL RESULT_BACKEND_URL
    python -m bench.baselines.enqueuer stock|switchyard|start_run|bulk|packed|atomic_delay COUNT

Sets up (Django, the Celery app, its connections), prints "ready", waits for a line on
stdin (so that several of these start at once), then makes COUNT calls and prints
{"began": ..., "ended": ... (time.time()), "calls": [seconds of each call]}. The
batched ways (bulk, packed, atomic_delay) make one call for all COUNT runs and report its
time divided by COUNT for each run.
"""

import json
import sys
import time
from collections.abc import Callable

from celery import Celery


def raw(urls: list[str]) -> tuple[Celery, Callable[[], object]]:
    from . import tasks  # noqa: F401  (registers bench.noop)
    from .raw_celery import configure

    app = configure(*urls)
    noop = app.tasks["bench.noop"]
    return app, noop.delay


def stock(urls: list[str]) -> tuple[Celery, Callable[[], object]]:
    import django

    django.setup()
    from . import tasks  # noqa: F401
    from .stock_celery import app

    noop = app.tasks["bench.noop"]
    return app, noop.delay


def switchyard(urls: list[str]) -> tuple[Celery, Callable[[], object]]:
    import django

    django.setup()
    from apps.demo.tasks import add
    from project import celery_app

    return celery_app, lambda: add.delay(1, 2)


def start_run(urls: list[str]) -> tuple[Celery, Callable[[], object]]:
    import django

    django.setup()
    from apps.jobs.catalog import get_job
    from apps.jobs.dispatch import start_run
    from apps.jobs.models import Source
    from project import celery_app

    job = get_job("apps.demo.tasks.add")
    return celery_app, lambda: start_run(job, {"x": 1, "y": 2}, source=Source.SHELL)


def bulk(urls: list[str], per_message: int = 1) -> tuple[Celery, Callable[[int], object]]:
    """All of this process's runs in one `start_runs` call, `per_message` per message."""
    import django

    django.setup()
    from apps.jobs.catalog import get_job
    from apps.jobs.dispatch import start_runs
    from apps.jobs.models import Source
    from project import celery_app

    job = get_job("apps.demo.tasks.add")
    return celery_app, lambda n: start_runs(job, [{"x": 1, "y": 2}] * n, source=Source.SHELL,
                                            per_message=per_message)  # fmt: skip


PER_MESSAGE = 25  # runs per message of the packed way


def packed(urls: list[str]) -> tuple[Celery, Callable[[int], object]]:
    """`bulk` with PER_MESSAGE runs per message (apps/jobs/packs.py)."""
    return bulk(urls, per_message=PER_MESSAGE)


def atomic_delay(urls: list[str]) -> tuple[Celery, Callable[[int], object]]:
    """All of this process's `add.delay()` calls inside one `transaction.atomic()`."""
    import django

    django.setup()
    from django.db import transaction

    from apps.demo.tasks import add
    from project import celery_app

    def calls(n: int) -> None:
        with transaction.atomic():
            for _ in range(n):
                add.delay(1, 2)

    return celery_app, calls


CALLERS = {"raw": raw, "stock": stock, "switchyard": switchyard, "start_run": start_run,
           "bulk": bulk, "packed": packed, "atomic_delay": atomic_delay}  # fmt: skip
# These take the whole count in one call; each run's share of it is reported per run.
BATCHED = {"bulk", "packed", "atomic_delay"}


def connect(app: Celery, uses_django: bool) -> None:
    """Open the broker (and database) connections before the clock starts."""
    with app.producer_or_acquire() as producer:
        producer.connection.ensure_connection(max_retries=3)
    if uses_django:
        from django.db import connection

        connection.ensure_connection()


def main(argv: list[str]) -> None:
    kind, count, *urls = argv
    app, call = CALLERS[kind](urls)
    connect(app, uses_django=kind != "raw")
    print("ready", flush=True)
    sys.stdin.readline()
    calls = []
    began = time.time()
    if kind in BATCHED:
        started = time.perf_counter()
        call(int(count))
        calls = [(time.perf_counter() - started) / int(count)] * int(count)
    for _ in range(0 if kind in BATCHED else int(count)):
        started = time.perf_counter()
        call()
        calls.append(time.perf_counter() - started)
    ended = time.time()
    print(json.dumps({"began": began, "ended": ended, "calls": calls}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
