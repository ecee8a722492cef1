"""`manage.py ratelimits list|set|clear`: jobs' rate limits at run time (per worker)."""

from apps.control import actions, status
from apps.control.models import RateLimit

from ._control import ControlCommand


class Command(ControlCommand):
    help = (
        "List, set or clear a job's rate limit (Celery's format: 10/s, 10/m, 10/h). Celery "
        "applies it in each worker separately; it is stored, so restarted workers apply it."
    )

    def add_arguments(self, parser) -> None:
        commands = self.add_subcommands(parser)
        commands.add_parser("list", help="the limits set at run time")
        limit = commands.add_parser("set", help="ratelimits set JOB 10/m")
        limit.add_argument("job", metavar="JOB")
        limit.add_argument("rate", metavar="RATE")
        commands.add_parser("clear", help="back to the job's own limit").add_argument("job")

    def handle_list(self, **options) -> None:
        for row in RateLimit.objects.all():
            self.stdout.write(f"{row.job_name}\t{row.rate} per worker\tset by {row.set_by}")

    def handle_set(self, *, job: str, rate: str, **options) -> None:
        if not rate.strip():
            return self.handle_clear(job=job)
        row = actions.set_rate_limit(self.actor, job, rate)
        self.describe(job)
        self.warn_if_not_told(row)

    def handle_clear(self, *, job: str, **options) -> None:
        row = actions.clear_rate_limit(self.actor, job)
        self.describe(job)
        self.warn_if_not_told(row)

    def describe(self, job_name: str) -> None:
        summary = status.rate_summary(actions.catalog_job(job_name))
        rate = f"{summary.rate} per worker" if summary.rate else "no rate limit"
        self.stdout.write(
            f"{job_name}: {rate}; {summary.workers} workers consume {summary.queue}: "
            f"effective total {summary.total}"
        )
