"""Export and retention memory: peak RSS of each job at a tenth of the rows and at all.

    .venv/bin/python -m bench.export_memory [--rows 1000000] [--quick] [--no-write]

Starts its own PostgreSQL (and Redis), loads N runs and N django-celery-results rows
(bench/admin_pages.py's loader: 30 days of history), then runs each job in a fresh
process and reads that process's peak resident set size (VmHWM in /proc) when it ends:

- export: `apps.reports.export.write_csv` (what the export_runs job does) over the
  first N/10 runs, then over all N;
- held at once: the same rows read into one list (`values_list`), the non-streaming
  way, for scale;
- retention: `apps.maintenance.retention.prune_runs` (what the prune_runs job does), first
  with a cutoff that takes about a tenth of the rows, then one that takes the rest.

Constant memory = the peak at N no higher than at N/10 (plus a few MiB of noise).
Written to docs/performance.md ("Export and retention memory").
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from apps.devstack import processes

from .common import Stack, command_line, measured, private_stack, write_section

HEADING = "Export and retention memory"
FLAT_MIB = 8  # how much more the peak at N may be than at N/10 and still count as flat
HISTORY_DAYS = 30  # bench.admin_pages.load spreads the rows over this many days


@dataclass
class Measurement:
    job: str
    rows: int  # rows exported, held or deleted
    seconds: float
    start_mib: float  # RSS once Django is set up, before the job
    peak_mib: float  # VmHWM at the end


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    with private_stack() as stack:
        started = time.monotonic()
        load(args.rows)
        loaded = time.monotonic() - started
        results = measure_all(stack, args.rows)
    text = report(results, args, loaded)
    print(text)
    if not args.no_write:
        write_section(HEADING, text)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="runs (and results)")
    parser.add_argument("--quick", action="store_true", help="100,000 rows")
    parser.add_argument("--no-write", action="store_true", help="do not touch the docs")
    args = parser.parse_args(argv)
    if args.quick:
        args.rows = min(args.rows, 100_000)
    return args


def load(rows: int) -> None:
    from .admin_pages import load as load_history

    load_history(rows)


def measure_all(stack: Stack, rows: int) -> list[Measurement]:
    tenth = rows // 10
    results = [child(stack, "export", tenth), child(stack, "export", rows),
               child(stack, "hold", tenth), child(stack, "hold", rows)]  # fmt: skip
    # The oldest tenth first (cutoff: 90 % of the history's age), then everything left.
    results.append(child(stack, "prune", HISTORY_DAYS * 0.9))
    results.append(child(stack, "prune", 0))
    return results


def child(stack: Stack, job: str, amount: float) -> Measurement:
    """Run one job in a fresh process on the stack; its own report of what it did."""
    out = subprocess.run([processes.PYTHON, "-m", "bench.export_memory", "--child", job,
                          str(amount)], env=stack.env(CELERY_SKIP_CHECKS="1"),
                         capture_output=True, text=True, check=True)  # fmt: skip
    return Measurement(**json.loads(out.stdout.strip().splitlines()[-1]))


# In the child process ------------------------------------------------------------------


def run_child(job: str, amount: str) -> None:
    import django

    django.setup()
    start = status_mib("VmRSS")
    started = time.monotonic()
    rows = JOBS[job](float(amount))
    print(json.dumps({"job": job, "rows": rows, "seconds": time.monotonic() - started,
                      "start_mib": start, "peak_mib": status_mib("VmHWM")}))  # fmt: skip


def export(count: float) -> int:
    from apps.jobs.models import Run
    from apps.reports.export import write_csv

    with tempfile.TemporaryDirectory() as folder:
        return write_csv(Path(folder) / "runs.csv", Run.objects.filter(pk__lte=int(count)))


def hold(count: float) -> int:
    from apps.jobs.models import Run
    from apps.reports.export import FIELDS

    return len(list(Run.objects.filter(pk__lte=int(count)).values_list(*FIELDS)))


def prune(days: float) -> int:
    from datetime import timedelta

    from apps.maintenance.retention import prune_runs

    # A cutoff of 0 would mean "the default age" to prune_runs: one second is "all".
    deleted = prune_runs(timedelta(days=days) or timedelta(seconds=1))
    return deleted["runs"] + deleted["results"]


JOBS = {"export": export, "hold": hold, "prune": prune}


def status_mib(field: str) -> float:
    """VmRSS or VmHWM (peak) of this process, in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


# Report ---------------------------------------------------------------------------------

INTRO = """
{rows:,} runs and {rows:,} django-celery-results rows on PostgreSQL (30 days of history,
loaded in {loaded:.0f} s). Each job runs in a fresh Python process with Django set up;
"peak" is that process's VmHWM when the job ends, "at start" its RSS before the job.
Export = `apps.reports.export.write_csv`, the body of the export_runs job: keyset
batches of 2,000 rows written straight to the file. Held at once = the same rows read
into one list, for scale. Retention = `apps.maintenance.retention.prune_runs`, the body of the
prune_runs job: primary keys 5,000 at a time, each batch deleted in its own
transaction; the first cutoff takes the oldest tenth of runs and results, the second
the rest.
"""


def report(results: list[Measurement], args, loaded: float) -> str:
    lines = [
        INTRO.format(rows=args.rows, loaded=loaded).strip(),
        "",
        f"Command: `{command_line('bench.export_memory')}`  ",
        measured(),
        "",
        "| job | rows | time | RSS at start | peak RSS | peak above start |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for m in results:
        lines.append(f"| {m.job} | {m.rows:,} | {m.seconds:.1f} s | {m.start_mib:.0f} MiB "
                     f"| {m.peak_mib:.0f} MiB | {m.peak_mib - m.start_mib:.0f} MiB |")  # fmt: skip
    lines += ["", verdict(results, args)]
    return "\n".join(lines)


def verdict(results: list[Measurement], args) -> str:
    by_job = {job: [m for m in results if m.job == job] for job in ("export", "prune", "hold")}
    flat = {job: by_job[job][1].peak_mib - by_job[job][0].peak_mib for job in ("export", "prune")}
    met = all(growth <= FLAT_MIB for growth in flat.values())
    held, exported = by_job["hold"][1], by_job["export"][1]
    return (f"**Goal 5 ({args.rows:,}-row export and retention in constant memory)**: "
            f"{'met' if met else 'not met'}: the export's peak RSS at {exported.rows:,} rows is "
            f"{round(flat['export']):+d} MiB from its peak at a tenth of them, the "
            f"retention job's {round(flat['prune']):+d} MiB (flat: at most {FLAT_MIB} MiB); "
            f"holding the {held.rows:,} rows at once peaks at {held.peak_mib:,.0f} MiB "
            f"(`{command_line('bench.export_memory')}`).")  # fmt: skip


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        run_child(*sys.argv[2:4])
    else:
        main()
