"""Jobs the chaos suite's worker processes run (`--include tests.reliability.chaos_jobs`).

Only the workers import this module: the test process sends these jobs by name, so the
catalog every other test sees stays as it is.

Each execution appends two lines to a ledger file, one before its work and one after,
so the tests count executions whatever happened to Redis or the database meanwhile.
"""

import os
import time

from celery import current_task

from apps.jobs.catalog import job


def note(ledger: str, event: str) -> None:
    line = f"{event} {current_task.request.id} {os.getpid()}\n".encode()
    fd = os.open(ledger, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)  # one small O_APPEND write: lines from many processes never mix
    finally:
        os.close(fd)


@job(title="Chaos: record an execution", group="Chaos")
def record(ledger: str, seconds: float = 0.1) -> str:
    """Idempotent: late acknowledgement, delivered again if its worker dies."""
    note(ledger, "start")
    time.sleep(seconds)
    note(ledger, "done")
    return "recorded"


@job(title="Chaos: record an execution, never twice", group="Chaos", idempotent=False)
def record_once(ledger: str, seconds: float = 0.1) -> str:
    """Not idempotent: acknowledged on receipt, marked failed if its worker dies."""
    note(ledger, "start")
    time.sleep(seconds)
    note(ledger, "done")
    return "recorded once"
