"""`manage.py check_alerts`: run the alert sweep once (what the minute task does)."""

from django.core.management.base import BaseCommand

from apps.ops.alerts import check_alerts


class Command(BaseCommand):
    help = "Email about failed runs, missed schedules and beat down; close what recovered."

    def handle(self, *args, **options) -> None:
        counts = check_alerts()
        if options["verbosity"] >= 1:
            self.stdout.write(", ".join(f"{name}: {n}" for name, n in counts.items()))
