"""`manage.py jobs list|run|status|cancel|retry|runs`: the catalog from a shell.

Exit status: 0 ok; 1 when a waited-for run failed or was cancelled (or a cancel was
refused: the run had finished, or had started and its job is not cancellable; or a bulk
action's set grew past --expect); 2 on bad input (unknown job or run, bad parameters,
bad filters); 124 when --wait gave up after --timeout (the run goes on: it may still
succeed), as timeout(1) does; 130 when waiting was interrupted.

    manage.py jobs runs --state failed --job apps.demo.tasks.add --param customer_id=42
    manage.py jobs runs --state failed --param email~@example.com --retry --yes
"""

import argparse
import difflib
import json

from django.core.management.base import CommandError
from django.core.serializers.json import DjangoJSONEncoder

from apps.jobs import bulk, cli, failures, run_filters
from apps.jobs.catalog import Job, ParameterError, all_jobs, get_job
from apps.jobs.command_base import BAD_INPUT, OneLineErrorsCommand
from apps.jobs.dispatch import cancel_refusal, cancel_run, rerun, start_run, start_runs
from apps.jobs.models import Run, Source, State

TIMED_OUT = 124  # timeout(1)'s status: a script can tell "gave up waiting" from "failed"
DEFAULT_TIMEOUT = 60.0


class Command(OneLineErrorsCommand):
    help = "List the jobs; start a run; show, cancel or re-run a run (ID: run id or task id)."

    def add_arguments(self, parser) -> None:
        actions = self.add_subcommands(parser)
        listing = actions.add_parser("list", help="the jobs, their parameters and queues")
        add_json_option(listing)
        run = actions.add_parser("run", help="start a run: jobs run NAME key=value ...")
        run.add_argument("name", metavar="NAME", help="the job's task name (see: jobs list)")
        run.add_argument("params", nargs="*", metavar="key=value")
        run.add_argument(
            "--many",
            metavar="FILE",
            help="start one run per parameter set: "
            "a JSON array of objects, or one object per line ('-': stdin)",
        )
        run.add_argument(
            "--per-message",
            metavar="N",
            type=int,
            default=1,
            help="with --many: pack N runs into each message (1-100; idempotent jobs)",
        )
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

        add_runs_parser(actions)

    def handle(self, *args, action: str, **options) -> None:
        if options.get("timeout") is not None and not options.get("wait"):
            raise CommandError("--timeout needs --wait", returncode=BAD_INPUT)
        getattr(self, f"handle_{action}")(**options)

    def handle_list(self, *, as_json: bool, **options) -> None:
        if as_json:
            return self.emit([cli.job_summary(job) for job in all_jobs()])
        for job in all_jobs():
            self.stdout.write("\n".join(cli.job_lines(job)))

    def handle_run(self, *, name: str, params: list[str], many: str | None, per_message: int,
                   **options) -> None:  # fmt: skip
        job = find_job(name)
        if many is not None:
            return self.start_many(job, many, params, per_message, **options)
        if per_message != 1:
            raise CommandError("--per-message goes with --many", returncode=BAD_INPUT)
        try:
            run = start_run(job, cli.parse_pairs(params), source=Source.CLI, label=cli.os_user(),
                            text=True)  # fmt: skip
        except ParameterError as error:
            raise CommandError(error.one_line(), returncode=BAD_INPUT) from None
        self.started(run, **options)

    def start_many(self, job: Job, source: str, params: list[str], per_message: int, *,
                   wait: bool, as_json: bool, **options) -> None:  # fmt: skip
        if params or wait:
            raise CommandError("--many takes no key=value and no --wait", returncode=BAD_INPUT)
        try:
            items = cli.parameter_sets(cli.read_source(source))
            runs = start_runs(job, items, source=Source.CLI, label=cli.os_user(),
                              per_message=per_message)  # fmt: skip
        except (ParameterError, OSError) as error:
            reason = error.one_line() if isinstance(error, ParameterError) else str(error)
            raise CommandError(reason, returncode=BAD_INPUT) from None
        if as_json:
            return self.emit([{"id": run.pk, "task_id": run.task_id} for run in runs])
        self.stdout.write(f"started {len(runs)} runs (ids {runs[0].pk} to {runs[-1].pk})")

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
            raise CommandError(f"run {run.pk} not cancelled: {cancel_refusal(run)}")
        if as_json:
            return self.emit(cli.run_summary(run))
        if run.state == State.CANCELLED:
            self.stdout.write(f"run {run.pk} cancelled")
        else:
            self.stdout.write(f"run {run.pk}: cancel requested while {run.state}")

    def handle_runs(self, *, as_json: bool, limit: int, yes: bool, expect: int | None,
                    **options) -> None:  # fmt: skip
        runs_filter = read_cli_filters(options)
        action = next((a for a in bulk.Action.values if options.get(a)), None)
        if options.get("failures"):
            return self.list_failures(runs_filter, as_json)
        if action is None:
            return self.list_runs(runs_filter, limit, as_json)
        count = bulk.preview(None, action, runs_filter)
        if not yes:
            self.stdout.write(f"{count} runs would be {bulk.VERB[bulk.Action(action)]}; "
                              f"add --yes to do it")  # fmt: skip
            return
        try:
            outcome = bulk.perform(None, action, runs_filter, expect if expect is not None
                                   else count, source=Source.CLI, label=cli.os_user())  # fmt: skip
        except bulk.CountGrew as grew:
            raise CommandError(str(grew)) from None
        if as_json:
            return self.emit(outcome.as_dict())
        self.stdout.write(outcome.summary())

    def list_runs(self, runs_filter, limit: int, as_json: bool) -> None:
        runs = runs_filter.apply(Run.objects.select_related("requested_by"))
        shown = list(runs.order_by("-queued_at", "-id")[:limit])
        if as_json:
            return self.emit([cli.run_line_summary(run) for run in shown])
        for run in shown:
            self.stdout.write(cli.run_line(run))

    def list_failures(self, runs_filter, as_json: bool) -> None:
        groups = failures.failure_groups(runs_filter.apply(Run.objects.all()))
        if as_json:
            return self.emit([cli.failure_group_summary(group) for group in groups])
        for group in groups:
            self.stdout.write(cli.failure_group_line(group))

    def started(self, run: Run, *, wait: bool, timeout: float | None, as_json: bool,
                verbosity: int, **options) -> None:  # fmt: skip
        if run.state == State.PENDING_SEND:
            self.stderr.write(f"run {run.pk} is recorded but not sent yet (broker unreachable?)")
        if not wait:
            if as_json:
                return self.emit(cli.run_summary(run))
            return self.stdout.write(f"started run {run.pk} (task {run.task_id})")
        if verbosity >= 1 and not as_json:
            self.stdout.write(f"started run {run.pk} (task {run.task_id}), waiting...")
        self.follow(run, DEFAULT_TIMEOUT if timeout is None else timeout, as_json)

    def follow(self, run: Run, timeout: float, as_json: bool) -> None:
        try:
            finished = cli.wait_until_finished(run, timeout)
        except KeyboardInterrupt:
            raise CommandError(f"stopped waiting; run {run.pk} goes on", returncode=130) from None
        summary = cli.run_summary(run)
        if as_json:
            self.emit(summary)
        if not finished:
            reason = f"timed out after {timeout:g} s; run {run.pk} goes on ({run.state})"
            raise CommandError(reason, returncode=TIMED_OUT)
        if cli.ending(summary):
            raise CommandError(cli.ending(summary))
        if not as_json:
            self.stdout.write(cli.show_value(summary["result"]))

    def emit(self, data) -> None:
        self.stdout.write(json.dumps(data, indent=2, cls=DjangoJSONEncoder))


def add_runs_parser(actions) -> None:
    runs = actions.add_parser("runs", help="list runs by filters; act on all of them")
    runs.add_argument("--state", action="append", default=[], metavar="STATE",
                      help="one or more states (repeat)")  # fmt: skip
    for name, text in [("job", "job name"), ("source", "web, api, cli, schedule, ..."),
                       ("user", "started by (user name)"), ("worker", "worker name"),
                       ("schedule", "schedule name")]:  # fmt: skip
        runs.add_argument(f"--{name}", default="", help=text)
    runs.add_argument("--from", dest="date_from", default="", help="YYYY-MM-DD or ISO moment")
    runs.add_argument("--to", dest="date_to", default="", help="YYYY-MM-DD (all of it) or ISO")
    runs.add_argument("--handled", choices=["yes", "no"], default="")
    runs.add_argument("--param", dest="param_tokens", action="append", default=[],
                      metavar="K=V|K~V", help="parameter equals (=) or contains (~)")  # fmt: skip
    runs.add_argument("--limit", type=list_limit, default=50, metavar="N",
                      help="runs listed (default 50, at most 10000)")  # fmt: skip
    act = runs.add_mutually_exclusive_group()
    act.add_argument("--failures", action="store_true",
                     help="failed for good, grouped by error (instead of runs)")  # fmt: skip
    for name in bulk.Action.values:
        act.add_argument(f"--{name}", action="store_true", help=bulk.Action(name).label)
    runs.add_argument("--yes", action="store_true", help="act (without it: the count only)")
    runs.add_argument("--expect", type=expected_count, default=None, metavar="N",
                      help="refuse (exit 1) if more than N runs match when acting")  # fmt: skip
    add_json_option(runs)


def list_limit(raw: str) -> int:
    if not raw.isdigit() or not 1 <= int(raw[:6]) <= 10000 or len(raw) > 5:
        raise argparse.ArgumentTypeError(f"expected a number from 1 to 10000, got {raw[:20]!r}")
    return int(raw)


def expected_count(raw: str) -> int:
    if not raw.isdigit() or len(raw) > 10 or int(raw) > 10**9:
        raise argparse.ArgumentTypeError(f"expected a count from 0 to 10**9, got {raw[:20]!r}")
    return int(raw)


def read_cli_filters(options: dict):
    pairs = [("state", state) for state in options["state"]]
    pairs += [(name, options[name]) for name in FILTER_OPTIONS if options.get(name)]
    try:
        conditions = [run_filters.condition_from_token(t) for t in options["param_tokens"]]
        pairs += [condition.pair() for condition in conditions]
        return run_filters.read(pairs)
    except run_filters.FilterError as error:
        raise CommandError(error.one_line(), returncode=BAD_INPUT) from None


FILTER_OPTIONS = ("job", "source", "user", "worker", "schedule", "date_from", "date_to",
                  "handled")  # fmt: skip


def add_wait_options(parser) -> None:
    parser.add_argument("--wait", action="store_true", help="wait for the run to finish")
    parser.add_argument("--timeout", type=positive_seconds, default=None, metavar="S",
                        help="with --wait: exit 124 after S seconds (default 60)")  # fmt: skip
    add_json_option(parser)


def add_json_option(parser) -> None:
    parser.add_argument("--json", dest="as_json", action="store_true", help="output JSON")


MAX_WAIT_SECONDS = 365 * 24 * 3600  # a year: 1e400 (inf) waited for ever


def positive_seconds(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not 0 < value <= MAX_WAIT_SECONDS:
        raise argparse.ArgumentTypeError(
            f"expected a positive number of seconds, at most {MAX_WAIT_SECONDS}, got {raw!r}"
        )
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
