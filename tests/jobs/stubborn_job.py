"""A job that keeps going past its soft time limit, for the test of a pack its hard time
limit ends (tests/jobs/test_packs.py starts a worker of its own with `--include` this)."""

import contextlib
import time
from typing import Annotated

from celery.exceptions import SoftTimeLimitExceeded

from apps.jobs.catalog import job
from apps.jobs.params import Range

NAME = "tests.jobs.stubborn_job.stubborn"


@job(title="Keep going past the soft time limit", soft_time_limit=1, time_limit=3)
def stubborn(seconds: Annotated[float, Range(0, 60)] = 0) -> str:
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        with contextlib.suppress(SoftTimeLimitExceeded):  # only the hard limit ends it
            time.sleep(left)
    return f"slept {seconds} s"
