"""Run the test suite on SQLite and on a throwaway PostgreSQL cluster, both at once.

    python -m tests.run_suite [--only sqlite|postgres] [--serial] [-m MARKS] [pytest arguments...]

The two passes share nothing (each session starts its own Redis, worker and test
database) and spend most of their time waiting on processes, not on the CPU, so they run
side by side: the SQLite pass prints as it goes, the PostgreSQL pass into a log file that
is printed when it ends. --serial runs one after the other, both printing as they go.

Exits non-zero if any run fails or collects no tests (pytest's exit 5).
"""

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile

from switchyard_dev.services import postgres_bindir, postgres_cluster


def start_pytest(label: str, database_url: str | None, pytest_args: list[str],
                 log=None) -> subprocess.Popen:  # fmt: skip
    if log is None:
        print(f"\n=== test suite on {label} ===", flush=True)
    else:
        print(f"\n=== test suite on {label}, alongside: its output goes to {log.name} ===",
              flush=True)  # fmt: skip
    env = dict(os.environ)
    env.pop("CELERY_BROKER_URL", None)  # the suite starts its own Redis
    env.pop("DATABASE_URL", None)
    if database_url:
        env["DATABASE_URL"] = database_url
    output = {"stdout": log, "stderr": subprocess.STDOUT} if log else {}
    return subprocess.Popen([sys.executable, "-m", "pytest", *pytest_args], env=env, **output)


def stop_if_running(run: subprocess.Popen) -> None:
    if run.poll() is None:
        run.terminate()
        run.wait()


def outcome(label: str, code: int) -> int:
    if code == 5:
        print(f"=== {label}: pytest collected no tests: failing ===", flush=True)
        return 1
    return code


# Tests that need one database only run in one pass: `once` and `browser` on SQLite,
# `postgres_pass` on PostgreSQL (see the markers in pyproject.toml).
SQLITE_PASS = "not postgres_pass"
POSTGRES_PASS = "not browser and not once"


# Scenarios run only when a -m names them: a pipeline's 1,000-step fan-out at full scale
# (`make scale`), the hosts scenarios with no short version (`make chaos-hosts`).
UNLESS_ASKED = "not scale and not hosts_full"


def marks(given: str | None, this_pass: str) -> list[str]:
    return ["-m", f"({given}) and ({this_pass})" if given else f"({this_pass}) and {UNLESS_ASKED}"]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=["sqlite", "postgres"])
    parser.add_argument("--serial", action="store_true", help="one pass after the other")
    parser.add_argument("-m", dest="marks", help="pytest's -m, combined with each pass's own")
    args, pytest_args = parser.parse_known_args()
    sqlite = args.only in (None, "sqlite")
    postgres = args.only in (None, "postgres")
    if postgres and postgres_bindir() is None:
        print("\n=== SKIPPED: PostgreSQL run: no PostgreSQL binaries (initdb) ===")
        postgres = False
    results = {}
    with contextlib.ExitStack() as stack:
        sqlite_run = None
        if sqlite:
            sqlite_args = [*pytest_args, *marks(args.marks, SQLITE_PASS)]
            sqlite_run = start_pytest("SQLite", None, sqlite_args)
            stack.callback(stop_if_running, sqlite_run)  # e.g. PostgreSQL failed to start
            if args.serial or not postgres:
                results["sqlite"] = outcome("SQLite", sqlite_run.wait())
        if postgres:
            url = stack.enter_context(postgres_cluster())
            log = None
            if sqlite_run is not None and not args.serial:
                log = stack.enter_context(tempfile.NamedTemporaryFile(
                    "w+b", prefix="switchyard-postgres-pass-", suffix=".log"))  # fmt: skip
            postgres_args = [*pytest_args, *marks(args.marks, POSTGRES_PASS)]
            postgres_run = start_pytest("PostgreSQL", url, postgres_args, log)
            stack.callback(stop_if_running, postgres_run)  # before its cluster stops
            if "sqlite" not in results and sqlite_run is not None:
                results["sqlite"] = outcome("SQLite", sqlite_run.wait())
            code = postgres_run.wait()
            if log is not None:
                print("\n=== test suite on PostgreSQL (its output) ===", flush=True)
                log.seek(0)
                sys.stdout.buffer.write(log.read())
                sys.stdout.flush()
            results["postgres"] = outcome("PostgreSQL", code)
    print("\n=== summary: " + ", ".join(f"{k}: {'ok' if v == 0 else 'FAILED'}"
                                       for k, v in results.items()) + " ===")  # fmt: skip
    return 0 if results and all(code == 0 for code in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
