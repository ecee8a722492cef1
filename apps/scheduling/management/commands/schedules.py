"""`manage.py schedules list|add|enable|disable|delete|next|run`: schedules from a shell.

`add` reads its arguments into a PeriodicTask, its schedule row and options (each value
parsed by the admin form's own field for it) and calls saving.save_schedule, which the
admin's form calls too: the same checks, messages and write. Exit status: 0 ok; 2 on bad
input, with one line on stderr. No user: per-job permissions do not apply (an operator's
tool, like `manage.py shell`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import difflib
import json
import re
import zoneinfo

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError
from django.utils import timezone
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
)

from apps.audit.context import acting
from apps.audit.models import Via
from apps.jobs.catalog import ParameterError, get_job
from apps.jobs.cli import os_user, parse_pairs
from apps.jobs.command_base import BAD_INPUT, OneLineErrorsCommand
from apps.jobs.models import Source
from apps.scheduling import preview
from apps.scheduling.forms import ScheduleForm, default_zone, read_in_zone
from apps.scheduling.models import Overlap, Schedule
from apps.scheduling.saving import CRON_FIELDS, ScheduleError, one_line, save_schedule

PERIODS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
MAX_SHOWN = 1000  # `next -n`: each run is computed, so a huge count would never end


def run_count(text: str) -> int:
    """`next -n`: a whole number from 1 to MAX_SHOWN (argparse reports the error)."""
    try:
        count = int(text)
    except ValueError:
        count = 0
    if not 1 <= count <= MAX_SHOWN:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected a whole number from 1 to {MAX_SHOWN}"
        )
    return count


class Command(OneLineErrorsCommand):
    help = (
        "List, add, enable, disable, delete, preview and run periodic task schedules. "
        "An operator's tool: whoever has this shell may schedule and run any task; per-job "
        "permissions (jobs.run_<job>) apply in the admin, the web pages and the API."
    )

    def add_arguments(self, parser) -> None:
        commands = self.add_subcommands(parser)
        commands.add_parser("list", help="every schedule with its next run")
        add = commands.add_parser("add", help="add a schedule for a job")
        add.add_argument("name", metavar="NAME")
        add.add_argument("--job", required=True, help="task name, e.g. apps.demo.tasks.add")
        when = add.add_mutually_exclusive_group(required=True)
        when.add_argument("--every", metavar="N[smhd]", help="an interval, e.g. 10m or 2h")
        when.add_argument("--cron", metavar='"M H DoM Mon DoW"', help='e.g. "*/5 * * * *"')
        when.add_argument(
            "--at",
            metavar="DATETIME",
            help="once, e.g. 2026-12-01T09:00 (in --tz), or 2026-12-01T08:00Z",
        )
        add.add_argument("--tz", help="time zone of --cron and --at (default: TIME_ZONE)")
        add.add_argument("--one-off", action="store_true", help="run once, then disable")
        add.add_argument("--no-overlap", action="store_true",
                         help="skip a run while the previous one is still running")  # fmt: skip
        add.add_argument("params", nargs="*", metavar="key=value")
        simple = {"enable": "enable a schedule", "disable": "disable a schedule",
                  "delete": "delete a schedule", "run": "run a schedule now"}  # fmt: skip
        for name, text in simple.items():
            commands.add_parser(name, help=text).add_argument("name", metavar="NAME")
        upcoming = commands.add_parser("next", help="a schedule's next run times")
        upcoming.add_argument("name", metavar="NAME")
        upcoming.add_argument("-n", type=run_count, default=5,
                              help=f"how many, 1 to {MAX_SHOWN} (default 5)")  # fmt: skip

    def handle(self, *args, action: str, **options) -> None:
        with acting(via=Via.CLI, label=os_user()):  # the audit log's "who, from where"
            getattr(self, f"handle_{action}")(**options)

    def handle_list(self, **options) -> None:
        now = timezone.now()
        for task in Schedule.objects.with_schedules().with_run_summary(now).order_by("name"):
            self.stdout.write(summary_line(task, now))

    def handle_add(self, *, name: str, job: str, params: list[str], one_off: bool,
                   no_overlap: bool, every=None, cron=None, at=None, tz=None,
                   **options) -> None:  # fmt: skip
        task = PeriodicTask(name=name, task=job, one_off=one_off,
                            kwargs=json.dumps(parse_params(job, params)))  # fmt: skip
        row = schedule_row(every=every, cron=cron, at=at, tz=tz)
        try:
            task = save_schedule(task, row, {"overlap": Overlap.SKIP} if no_overlap else {},
                                 text=True)  # fmt: skip
        except ScheduleError as error:
            raise CommandError(error.one_line(), returncode=BAD_INPUT) from None
        self.stdout.write(f"added {task.name}: {preview.describe(task)}")
        for run in preview.upcoming_runs(task, timezone.now(), 1):
            zone = timezone.get_current_timezone()
            self.stdout.write(f"next run: {preview.format_moment(run, zone)}")

    def handle_enable(self, *, name: str, **options) -> None:
        count = find(name).set_enabled(True)
        self.stdout.write(f"enabled {name}" if count else f"{name} was already enabled")

    def handle_disable(self, *, name: str, **options) -> None:
        count = find(name).set_enabled(False)
        self.stdout.write(f"disabled {name}" if count else f"{name} was already disabled")

    def handle_delete(self, *, name: str, **options) -> None:
        find(name).delete()  # django-celery-beat's delete() tells beat
        self.stdout.write(f"deleted {name}")

    def handle_next(self, *, name: str, n: int, **options) -> None:
        task = find(name)
        shown = preview.preview(task, timezone.now(), n)
        self.stdout.write(f"{task.name}: {shown.description}")
        if shown.problem:
            self.stdout.write(f"broken: beat skips it until it is fixed ({shown.problem})")
        elif not shown.runs:
            why = shown.no_runs_because if task.enabled else "disabled"
            self.stdout.write("no runs ahead" + (f" ({why})" if why else ""))
        for row in shown.runs:
            self.stdout.write(f"{row.in_schedule_zone}    {row.in_viewer_zone}")

    def handle_run(self, *, name: str, **options) -> None:
        task = find(name)
        try:
            run = task.run_now(source=Source.CLI, label=os_user())
        except ParameterError as error:
            raise CommandError(error.one_line(), returncode=BAD_INPUT) from None
        self.stdout.write(f"started run {run.pk} (task {run.task_id})")


def find(name: str) -> Schedule:
    task = Schedule.objects.with_schedules().filter(name=name).first()
    if task is None:
        names = list(PeriodicTask.objects.values_list("name", flat=True))
        close = difflib.get_close_matches(name, names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else "; see: manage.py schedules list"
        raise CommandError(f"no schedule named {name!r}{hint}", returncode=BAD_INPUT)
    return task


def schedule_row(*, every: str | None, cron: str | None, at: str | None, tz: str | None):
    """--every, --cron or --at (with --tz, checked whatever the kind) as an unsaved row."""
    zone = parse_field("timezone", tz or "") or default_zone()
    if every is not None:
        spec = parse_every(every)
        return IntervalSchedule(every=parse_field("every", spec["every"]), period=spec["period"])
    if cron is not None:
        return CrontabSchedule(timezone=zoneinfo.ZoneInfo(zone), **parse_cron(cron))
    moment = parse_field("clocked_time", at)
    if moment and _names_its_offset(at):
        return ClockedSchedule(clocked_time=moment)  # an instant: --tz does not move it
    try:
        return ClockedSchedule(clocked_time=moment and read_in_zone(moment, zone))
    except ValidationError as error:
        raise refused("clocked_time", error) from None


def _names_its_offset(text: str) -> bool:
    """Whether an --at value gives its own UTC offset (2027-01-15T09:00+01:00, ...Z)."""
    try:
        return dt.datetime.fromisoformat(text.strip()).tzinfo is not None
    except ValueError:
        return False


def parse_field(name: str, text: str):
    """A value read by the admin form's own field for it: the same parsing and message."""
    try:
        return ScheduleForm.base_fields[name].clean(text)
    except ValidationError as error:
        raise refused(name, error) from None


def refused(name: str, error: ValidationError) -> CommandError:
    """A value the form's rules refuse, as the command's one line and exit status 2."""
    return CommandError(one_line({name: error.messages}), returncode=BAD_INPUT)


def parse_params(job: str, params: list[str]) -> dict:
    """key=value pairs: text for a catalog job (save_schedule reads them as text, as
    `jobs run` does), JSON (or text) otherwise."""
    try:
        pairs = parse_pairs(params)
    except ParameterError as error:
        raise CommandError(error.one_line(), returncode=BAD_INPUT) from None
    if get_job(job) is not None:
        return pairs
    return {key: json_or_text(value) for key, value in pairs.items()}


def parse_every(raw: str) -> dict:
    found = re.fullmatch(r"\s*(-?\d+)\s*([smhd])\s*", raw)
    if not found:
        raise CommandError(f"--every {raw!r}: expected a number and a unit (s, m, h or d), "
                           "like 10m", returncode=BAD_INPUT)  # fmt: skip
    return {"every": found[1], "period": PERIODS[found[2]]}


def parse_cron(raw: str) -> dict:
    fields = raw.split()
    if len(fields) != len(CRON_FIELDS):
        raise CommandError(f"--cron {raw!r}: expected 5 fields (minute hour day-of-month "
                           "month day-of-week)", returncode=BAD_INPUT)  # fmt: skip
    return dict(zip(CRON_FIELDS, fields, strict=True))


def json_or_text(value: str):
    try:
        return json.loads(value)
    except ValueError:
        return value


def summary_line(task: PeriodicTask, now) -> str:
    zone = timezone.get_current_timezone()
    runs = preview.safe_upcoming_runs(task, now, 1)
    upcoming = "broken" if runs is None else preview.format_moment(runs[0], zone) if runs else "-"
    state = "enabled" if task.enabled else "disabled"
    last = last_run(task, zone)
    return f"{task.name}  [{state}]  {preview.describe(task)}  next: {upcoming}  last: {last}"


def last_run(task: PeriodicTask, zone) -> str:
    """The newest run record; else, for a task that keeps none (the sweep, the alert
    check) or whose records were pruned, what beat stored when it last sent it."""
    if task.last_run_queued_at:
        return f"{task.last_run_state} {preview.format_moment(task.last_run_queued_at, zone)}"
    if task.total_run_count and task.last_run_at:
        sends = f"{task.total_run_count} send{'s' if task.total_run_count != 1 else ''}"
        return f"sent {preview.format_moment(task.last_run_at, zone)}; {sends}, no run records"
    return "never run"
