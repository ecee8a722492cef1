"""`manage.py prune_runs [--older-than 30d] [--dry-run]`: delete old runs and results."""

import re
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from apps.maintenance.retention import default_age, prune_runs

UNITS = {"d": "days", "h": "hours", "m": "minutes"}
BAD_INPUT = 2


def parse_age(text: str) -> timedelta:
    """'30d', '12h', '90m' -> timedelta; ValueError otherwise."""
    match = re.fullmatch(r"\s*(\d+)\s*([dhm])\s*", text.lower())
    if not match or int(match[1]) == 0:
        raise ValueError(f"--older-than {text!r}: expected a positive age like 30d, 12h or 90m")
    return timedelta(**{UNITS[match[2]]: int(match[1])})


class Command(BaseCommand):
    help = "Delete finished runs and stored results older than an age, in batches."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--older-than",
            metavar="AGE",
            help="30d, 12h or 90m (default: RESULT_RETENTION_DAYS days)",
        )
        parser.add_argument("--dry-run", action="store_true", help="count, delete nothing")
        parser.add_argument("--batch-size", type=int, default=5000)  # fmt: skip

    def handle(self, *args, older_than: str | None, dry_run: bool, batch_size: int, **opts):
        try:
            age = parse_age(older_than) if older_than else default_age()
        except ValueError as error:
            raise CommandError(str(error), returncode=BAD_INPUT) from None
        counts = prune_runs(age, dry_run=dry_run, batch_size=batch_size)
        verb = "would delete" if dry_run else "deleted"
        if opts["verbosity"] >= 1:
            self.stdout.write(
                f"{verb} {counts['runs']} runs and {counts['results']} results older than {age}"
            )
