"""An export of 100,000 runs stays within a fixed memory bound.

The bound discriminates: holding the same rows at once (plain tuples, far lighter than
model instances) takes several times more, which the test measures as well.
"""

import tracemalloc

import pytest

from apps.jobs.models import Run
from apps.reports import export
from tests.reports.helpers import make_runs

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

RUNS = 100_000
BOUND = 20 * 1024 * 1024


def peak_bytes(fn) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_exporting_100k_runs_keeps_memory_flat(tmp_path):
    make_runs(RUNS)
    runs = Run.objects.all()
    path = tmp_path / "runs.csv"
    streamed = peak_bytes(lambda: export.write_csv(path, runs))
    all_at_once = peak_bytes(lambda: list(runs.values_list(*export.FIELDS)))
    print(f"peak: streamed {streamed / 2**20:.1f} MiB, all at once {all_at_once / 2**20:.1f} MiB")
    assert path.read_text().count("\n") == RUNS + 1
    assert streamed < BOUND < all_at_once
