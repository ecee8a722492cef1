"""Run the test suite on SQLite, then on a throwaway PostgreSQL cluster.

    python -m tests.run_suite [--only sqlite|postgres] [-m MARKS] [pytest arguments...]

Exits non-zero if any run fails or collects no tests (pytest's exit 5).
"""

import argparse
import os
import subprocess
import sys

from switchyard_dev.services import postgres_bindir, postgres_cluster


def run_pytest(label: str, database_url: str | None, pytest_args: list[str]) -> int:
    print(f"\n=== test suite on {label} ===", flush=True)
    env = dict(os.environ)
    env.pop("CELERY_BROKER_URL", None)  # the suite starts its own Redis
    env.pop("DATABASE_URL", None)
    if database_url:
        env["DATABASE_URL"] = database_url
    code = subprocess.call([sys.executable, "-m", "pytest", *pytest_args], env=env)
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
    parser.add_argument("-m", dest="marks", help="pytest's -m, combined with each pass's own")
    args, pytest_args = parser.parse_known_args()
    results = {}
    if args.only in (None, "sqlite"):
        results["sqlite"] = run_pytest(
            "SQLite", None, [*pytest_args, *marks(args.marks, SQLITE_PASS)]
        )
    if args.only in (None, "postgres"):
        if postgres_bindir() is None:
            print("\n=== SKIPPED: PostgreSQL run: no PostgreSQL binaries (initdb) ===")
        else:
            with postgres_cluster() as url:
                results["postgres"] = run_pytest(
                    "PostgreSQL", url, [*pytest_args, *marks(args.marks, POSTGRES_PASS)]
                )
    print("\n=== summary: " + ", ".join(f"{k}: {'ok' if v == 0 else 'FAILED'}"
                                       for k, v in results.items()) + " ===")  # fmt: skip
    return 0 if results and all(code == 0 for code in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
