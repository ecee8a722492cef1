"""`manage.py jobs list|run|status|cancel|retry`: the catalog from a shell.

Exit status: 0 ok; 1 when a waited-for run failed, was cancelled or timed out (or there
was nothing to cancel); 2 on bad input (unknown job or run, bad parameters).
"""

import argparse
import difflib
import json

from django.core.management.base import CommandError
from django.core.serializers.json import DjangoJSONEncoder

from apps.jobs import cli
from apps.jobs.catalog import Job, ParameterError, all_jobs, get_job
from apps.jobs.command_base import BAD_INPUT, OneLineErrorsCommand
from apps.jobs.dispatch import cancel_run, rerun, start_run
from apps.jobs.models import Run, Source, State


class Command(OneLineErrorsCommand):
    help = "List the jobs; start a run; show, cancel or re-run a run (ID: run id or task id)."

    def add_arguments(self, parser) -> None:
        actions = self.add_subcommands(parser)
        listing = actions.add_parser("list", help="the jobs, their parameters and queues")
        add_json_option(listing)
        run = actions.add_parser("run", help="start a run: jobs run NAME key=value ...")
        run.add_argument("name", metavar="NAME", help="the job's task name (see: jobs list)")
        run.add_argument("params", nargs="*", metavar="key=value")
        add_wait_options(run)
        for name, text in [("status", "show a run"), ("cancel", "cancel a run"),
                           ("retry", "run again with the same parameters")]:  # fmt: skip
            action = actions.add_parser(name, help=text)
            action.add_argument("ident", metavar="ID", help="run id or Celery task id")
            if name == "retry":
                action.add_argument("secrets", nargs="*", metavar="key=value",
                                    help="the job's secret parameters, given again")  # fmt: skip
                add_wait_options(action)
            else:
                add_json_option(action)

    def handle(self, *args, action: str, **options) -> None:
        getattr(self, f"handle_{action}")(**options)

    def handle_list(self, *, as_json: bool, **options) -> None:
        if as_json:
            return self.emit([cli.job_summary(job) for job in all_jobs()])
        for job in all_jobs():
            self.stdout.write("\n".join(cli.job_lines(job)))

    def handle_run(self, *, name: str, params: list[str], **options) -> None:
        job = find_job(name)
        try:
            run = start_run(job, cli.parse_pairs(params), source=Source.CLI, label=cli.os_user())
        except ParameterError as error:
            raise CommandError(error.one_line(), returncode=BAD_INPUT) from None
        self.started(run, **options)

    def handle_retry(self, *, ident: str, secrets: list[str], **options) -> None:
        try:
            given = cli.parse_pairs(secrets)
            run = rerun(find_run(ident), source=Source.CLI, label=cli.os_user(),
                        secret_values=given)  # fmt: skip
        except ParameterError as error:
            raise CommandError(error.one_line(), returncode=BAD_INPUT) from None
        self.started(run, **options)

    def handle_status(self, *, ident: str, as_json: bool, **options) -> None:
        summary = cli.run_summary(find_run(ident))
        if as_json:
            return self.emit(summary)
        self.stdout.write("\n".join(cli.status_lines(summary)))

    def handle_cancel(self, *, ident: str, as_json: bool, **options) -> None:
        run = find_run(ident)
        if not cancel_run(run):
            raise CommandError(f"run {run.pk} already {run.state}; nothing to cancel")
        if as_json:
            return self.emit(cli.run_summary(run))
        if run.state == State.CANCELLED:
            self.stdout.write(f"run {run.pk} cancelled")
        else:
            self.stdout.write(f"run {run.pk}: cancel requested while {run.state}")

    def started(self, run: Run, *, wait: bool, timeout: float, as_json: bool, verbosity: int,
                **options) -> None:  # fmt: skip
        if run.state == State.PENDING_SEND:
            self.stderr.write(f"run {run.pk} is recorded but not sent yet (broker unreachable?)")
        if not wait:
            if as_json:
                return self.emit(cli.run_summary(run))
            return self.stdout.write(f"started run {run.pk} (task {run.task_id})")
        if verbosity >= 1 and not as_json:
            self.stdout.write(f"started run {run.pk} (task {run.task_id}), waiting...")
        self.follow(run, timeout, as_json)

    def follow(self, run: Run, timeout: float, as_json: bool) -> None:
        try:
            finished = cli.wait_until_finished(run, timeout)
        except KeyboardInterrupt:
            raise CommandError(f"stopped waiting; run {run.pk} goes on", returncode=130) from None
        summary = cli.run_summary(run)
        if as_json:
            self.emit(summary)
        if not finished:
            raise CommandError(f"timed out after {timeout:g} s; run {run.pk} is {run.state}")
        if cli.ending(summary):
            raise CommandError(cli.ending(summary))
        if not as_json:
            self.stdout.write(cli.show_value(summary["result"]))

    def emit(self, data) -> None:
        self.stdout.write(json.dumps(data, indent=2, cls=DjangoJSONEncoder))


def add_wait_options(parser) -> None:
    parser.add_argument("--wait", action="store_true", help="wait for the run to finish")
    parser.add_argument("--timeout", type=positive_seconds, default=60.0, metavar="S",
                        help="with --wait: give up after S seconds (default 60)")  # fmt: skip
    add_json_option(parser)


def add_json_option(parser) -> None:
    parser.add_argument("--json", dest="as_json", action="store_true", help="output JSON")


def positive_seconds(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {raw!r}")
    return value


def find_job(name: str) -> Job:
    job = get_job(name)
    if job is None:
        names = [j.name for j in all_jobs()]
        close = difflib.get_close_matches(name, names, n=1)
        hint = f"; did you mean {close[0]}?" if close else "; see: manage.py jobs list"
        raise CommandError(f"unknown job {name!r}{hint}", returncode=BAD_INPUT)
    return job


def find_run(ident: str) -> Run:
    run = cli.find_run(ident)
    if run is None:
        raise CommandError(f"no run with id or task id {ident!r}", returncode=BAD_INPUT)
    return run
