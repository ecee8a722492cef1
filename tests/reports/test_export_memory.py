"""An export's memory does not grow with the number of runs it writes.

Peak Python allocations (tracemalloc) of an export of 6,000 runs (three batches) and of
30,000 runs are about the same, while holding the 30,000 rows at once (plain tuples, far
lighter than model instances) takes several times more: the bound between them
discriminates.
bench/export_memory.py measures the same at 1,000,000 runs, as peak RSS.
"""

import datetime as dt
import tracemalloc

import pytest
from django.utils import timezone

from apps.jobs.models import Run
from apps.reports import export
from tests.reports.helpers import make_runs

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

RUNS = 30_000
FEW = 6_000  # three full batches: the peak is one batch's rows
BOUND = 12 * 1024 * 1024


def peak_bytes(fn) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_exporting_five_times_the_runs_takes_no_more_memory(tmp_path):
    now = timezone.now()
    make_runs(RUNS, queued_at=now)  # one second apart, the newest now
    newest = Run.objects.filter(queued_at__gt=now - dt.timedelta(seconds=FEW))
    every_run = Run.objects.all()
    small = peak_bytes(lambda: export.write_csv(tmp_path / "small.csv", newest))
    large = peak_bytes(lambda: export.write_csv(tmp_path / "large.csv", every_run))
    all_at_once = peak_bytes(lambda: list(every_run.values_list(*export.FIELDS)))
    print(f"peak: {FEW} runs {small / 2**20:.1f} MiB, {RUNS} runs {large / 2**20:.1f} "
          f"MiB; all at once {all_at_once / 2**20:.1f} MiB")  # fmt: skip
    assert (tmp_path / "large.csv").read_text().count("\n") == RUNS + 1
    assert (tmp_path / "small.csv").read_text().count("\n") == FEW + 1
    assert large < small + 512 * 1024
    assert large < BOUND < all_at_once
