"""A job that crashes PostgreSQL the moment it starts (SIGQUIT to the postmaster whose
pid file POSTMASTER_PID_FILE names: an immediate shutdown, as in a crash), for the
worker of tests/jobs/test_async_commit.py (started with `--include` this module)."""

import os
import signal
import time

from apps.jobs.catalog import job

NAME = "tests.jobs.crash_job.crash_database"


@job(title="Crash the database")
def crash_database() -> str:
    with open(os.environ["POSTMASTER_PID_FILE"]) as pid_file:
        pid = int(pid_file.readline())
    os.kill(pid, signal.SIGQUIT)
    while alive(pid):
        time.sleep(0.05)
    return "crashed it"


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
