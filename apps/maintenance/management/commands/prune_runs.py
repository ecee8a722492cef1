"""`manage.py prune_runs [--older-than 30d] [--dry-run]`: delete old runs and results."""

import re
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from apps.maintenance.retention import MAX_AGE_DAYS, MAX_BATCH_SIZE, default_age, prune_runs

UNITS = {"d": "days", "h": "hours", "m": "minutes"}
BAD_INPUT = 2
MINUTES_IN = (("day", 24 * 60), ("hour", 60), ("minute", 1))


def parse_age(text: str) -> timedelta:
    """'30d', '12h', '90m' -> timedelta; ValueError otherwise."""
    match = re.fullmatch(r"\s*([0-9]{1,9})\s*([dhm])\s*", text.lower(), re.ASCII)
    age = timedelta(**{UNITS[match[2]]: int(match[1])}) if match else timedelta(0)
    if not timedelta(0) < age <= timedelta(days=MAX_AGE_DAYS):
        raise ValueError(f"--older-than {text!r}: expected a positive age like 30d, 12h or "
                         f"90m, at most {MAX_AGE_DAYS}d")  # fmt: skip
    return age


def describe_age(age: timedelta) -> str:
    """30 days, 36 hours, 90 minutes: in the largest unit that counts it whole."""
    minutes = int(age.total_seconds()) // 60
    unit, size = next((u, size) for u, size in MINUTES_IN if minutes % size == 0)
    count = minutes // size
    return f"{count} {unit}{'' if count == 1 else 's'}"


def parse_batch_size(text: str) -> int:
    """'5000' -> 5000, from 1 to MAX_BATCH_SIZE; ValueError otherwise."""
    plain = text.strip().isascii() and text.strip().isdigit()  # ASCII digits only, as --older-than
    size = int(text) if plain and len(text) < 10 else 0
    if not 1 <= size <= MAX_BATCH_SIZE:
        raise ValueError(f"--batch-size {text!r}: expected 1 to {MAX_BATCH_SIZE}")
    return size


class Command(BaseCommand):
    help = "Delete finished runs and stored results older than an age, in batches."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--older-than",
            metavar="AGE",
            help="30d, 12h or 90m (default: RESULT_RETENTION_DAYS days)",
        )
        parser.add_argument("--dry-run", action="store_true", help="count, delete nothing")
        parser.add_argument(
            "--batch-size", default="5000", help=f"rows per DELETE, 1 to {MAX_BATCH_SIZE}"
        )

    def handle(self, *args, older_than: str | None, dry_run: bool, batch_size: str, **opts):
        try:
            age = parse_age(older_than) if older_than else default_age()
            size = parse_batch_size(str(batch_size))
        except ValueError as error:
            raise CommandError(str(error), returncode=BAD_INPUT) from None
        counts = prune_runs(age, dry_run=dry_run, batch_size=size)
        verb = "would delete" if dry_run else "deleted"
        if opts["verbosity"] >= 1:
            runs, results = counts["runs"], counts["results"]
            self.stdout.write(f"{verb} {runs} runs and {results} results older than "
                              f"{describe_age(age)}")  # fmt: skip
