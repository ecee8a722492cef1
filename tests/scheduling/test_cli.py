"""`manage.py schedules`: the admin's validation and messages from a shell; exit status 2."""

import datetime as dt
import json
import subprocess
import sys
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django_celery_beat.models import PeriodicTask

from apps.jobs.models import Run, Source
from apps.scheduling.forms import ScheduleTaskForm, form_data
from tests.scheduling.makers import make_crontab, make_interval, make_run, make_schedule

pytestmark = pytest.mark.django_db


def schedules(*args: str) -> tuple[int, str, str]:
    """Run `manage.py schedules ...` in-process: (exit status, stdout, error)."""
    out, err = StringIO(), StringIO()
    try:
        call_command("schedules", *args, stdout=out, stderr=err)
    except CommandError as error:
        return error.returncode, out.getvalue(), str(error)
    return 0, out.getvalue(), err.getvalue()


def admin_errors(**values) -> str:
    from apps.scheduling.forms import one_line_errors

    values.setdefault("param-x", "1")
    values.setdefault("param-y", "1")
    form = ScheduleTaskForm(data=form_data(**values))
    assert not form.is_valid()
    return one_line_errors(form)


# add ----------------------------------------------------------------------------------


def test_add_with_cron_stores_the_schedule_parameters_zone_and_options():
    code, out, _ = schedules("add", "berlin add", "--job", "apps.demo.tasks.add",
                             "--cron", "30 2 * * 1-5", "--tz", "Europe/Berlin", "x=2", "y=40",
                             "--no-overlap")  # fmt: skip
    assert code == 0
    task = PeriodicTask.objects.get(name="berlin add")
    assert json.loads(task.kwargs) == {"x": 2, "y": 40}
    cron = task.crontab
    assert (cron.minute, cron.hour, cron.day_of_week, str(cron.timezone)) == (
        "30", "2", "1-5", "Europe/Berlin",
    )  # fmt: skip
    assert task.options.overlap == "skip"
    assert out.startswith("added berlin add: At 02:30, Monday through Friday (Europe/Berlin)")
    assert "next run: " in out


def test_add_with_every_makes_an_interval():
    assert schedules("add", "often", "--job", "apps.demo.tasks.add", "--every", "90s",
                     "x=1", "y=1")[0] == 0  # fmt: skip
    interval = PeriodicTask.objects.get(name="often").interval
    assert (interval.every, interval.period) == (90, "seconds")


def test_add_with_at_makes_a_one_off_clocked_schedule_read_in_its_zone():
    schedules("add", "once", "--job", "apps.demo.tasks.add", "--at", "2036-12-01T09:00",
              "--tz", "America/New_York", "x=1", "y=1")  # fmt: skip
    task = PeriodicTask.objects.get(name="once")
    assert task.one_off
    assert task.clocked.clocked_time == dt.datetime(2036, 12, 1, 14, 0, tzinfo=dt.UTC)


def test_add_at_a_time_its_zone_skips_is_refused_with_one_line():
    # Berlin's clocks go from 02:00 to 03:00 on 2037-03-29: 02:30 is no time there.
    code, _, error = schedules("add", "gap", "--job", "apps.demo.tasks.add",
                               "--at", "2037-03-29T02:30", "--tz", "Europe/Berlin",
                               "x=1", "y=1")  # fmt: skip
    assert code == 2
    assert error.startswith("clocked_time: 2037-03-29 02:30 does not exist in Europe/Berlin")
    assert not PeriodicTask.objects.filter(name="gap").exists()


@pytest.mark.parametrize("at", ["2037-03-29T01:30Z", "2037-03-29T03:30+02:00"])
def test_add_at_an_instant_with_its_own_offset_keeps_it_whatever_the_zone(at):
    # 01:30 UTC is 03:30 in Berlin, just after its clocks skip 02:00-03:00.
    code, _, error = schedules("add", "instant", "--job", "apps.demo.tasks.add",
                               "--at", at, "--tz", "Europe/Berlin", "x=1", "y=1")  # fmt: skip
    assert code == 0, error
    clocked = PeriodicTask.objects.get(name="instant").clocked.clocked_time
    assert clocked == dt.datetime(2037, 3, 29, 1, 30, tzinfo=dt.UTC)


def test_add_at_a_time_its_zone_has_twice_takes_the_first():
    # Berlin's clocks go from 03:00 back to 02:00 on 2037-10-25: 02:30 comes twice.
    schedules("add", "twice", "--job", "apps.demo.tasks.add", "--at", "2037-10-25T02:30",
              "--tz", "Europe/Berlin", "x=1", "y=1")  # fmt: skip
    clocked = PeriodicTask.objects.get(name="twice").clocked.clocked_time
    assert clocked == dt.datetime(2037, 10, 25, 0, 30, tzinfo=dt.UTC)  # still summer time


def test_add_a_task_outside_the_catalog_takes_json_keyword_arguments():
    schedules("add", "mul", "--job", "apps.demo.tasks.mul", "--every", "1h", "x=6", "y=7")
    assert json.loads(PeriodicTask.objects.get(name="mul").kwargs) == {"x": 6, "y": 7}


@pytest.mark.parametrize(("job", "params", "field"), [
    ("apps.demo.tasks.mul", ["x=1e309", "y=2"], "kwargs"),
    ("apps.demo.tasks.mul", ["x=NaN", "y=2"], "kwargs"),
    ("apps.demo.tasks.mul", ['x="\\ud800"', "y=2"], "kwargs"),
    ("apps.demo.tasks_api.tasks.tally", ["counts=NaN"], "counts"),
    ("apps.demo.tasks_api.tasks.tally", ['counts={"a": 1e309}'], "counts"),
    ("apps.demo.tasks_api.tasks.tally", ['counts="\\ud800"'], "counts"),
])  # fmt: skip
def test_add_refuses_arguments_no_run_record_can_store_with_exit_status_2(job, params, field):
    """Saved before (exit 0), then beat sent them with no run record and `schedules run`
    printed a traceback."""
    code, _, error = schedules("add", "bad", "--job", job, "--every", "10s", *params)
    assert code == 2
    assert error.startswith(f"{field}: ")
    assert not PeriodicTask.objects.filter(name="bad").exists()


@pytest.mark.parametrize(("args", "admin_values"), [
    (["--every", "0m", "x=1", "y=1"], {"kind": "interval", "every": "0", "period": "minutes"}),
    (["--cron", "61 * * * *", "x=1", "y=1"], {"minute": "61"}),
    (["--cron", "0 0 31 2 *", "x=1", "y=1"], {"day_of_month": "31", "month_of_year": "2"}),
    (["--every", "1m", "x=1"], {"kind": "interval", "every": "1", "param-y": None}),
    (["--every", "1m", "x=one", "y=1"], {"kind": "interval", "every": "1", "param-x": "one"}),
])  # fmt: skip
def test_bad_input_gets_the_admins_message_and_exit_status_2(args, admin_values):
    code, _, error = schedules("add", "bad", "--job", "apps.demo.tasks.add", *args)
    expected = admin_errors(name="bad", task="apps.demo.tasks.add", **admin_values)
    assert (code, error) == (2, expected)
    assert not PeriodicTask.objects.filter(name="bad").exists()


def test_an_unknown_parameter_is_refused():
    code, _, error = schedules("add", "bad", "--job", "apps.demo.tasks.add", "--every", "1m",
                               "x=1", "y=2", "z=3")  # fmt: skip
    assert (code, error) == (2, "error: z: unknown parameter")


def test_a_job_that_acts_as_its_starter_is_refused_with_exit_status_2():
    job = ("--job", "apps.jobs.tasks.bulk_runs")
    code, _, error = schedules("add", "cancel all", *job, "--every", "1d", "action=cancel",
                               "query=", "expected=9")  # fmt: skip
    assert code == 2
    assert error == ("task: Act on many runs acts as the person who starts it, and a "
                     "schedule has none: it cannot be scheduled.")  # fmt: skip
    assert not PeriodicTask.objects.filter(name="cancel all").exists()


def test_an_unknown_job_is_refused():
    code, _, error = schedules("add", "bad", "--job", "apps.nowhere.vanish", "--every", "1m")
    assert code == 2
    assert error.startswith("task: Unknown task 'apps.nowhere.vanish'")


def test_a_taken_name_is_refused():
    make_schedule("taken")
    code, _, error = schedules("add", "taken", "--job", "apps.demo.tasks.add", "--every", "1m",
                               "x=1", "y=1")  # fmt: skip
    assert (code, error) == (2, "name: Periodic task with this Name already exists.")


@pytest.mark.parametrize(("args", "message"), [
    (["--every", "10 minutes"], "--every '10 minutes': expected a number and a unit"),
    (["--cron", "* * *"], "--cron '* * *': expected 5 fields"),
    (["--every", "1m", "--cron", "* * * * *"], "not allowed with argument"),
    ([], "one of the arguments --every --cron --at is required"),
    (["--every", "1m", "--tz", "Mars/Olympus"], "timezone: Select a valid choice."),
    (["--every", "1m", "novalue"], "novalue: expected key=value"),
])  # fmt: skip
def test_malformed_options_exit_with_status_2(args, message):
    code, _, error = schedules("add", "bad", "--job", "apps.demo.tasks.add", *args)
    assert code == 2
    assert message in error


@pytest.mark.parametrize(("args", "field"), [
    (["--every", "1m", "--tz", ""], None),  # an empty zone is the default zone
    (["--at", ""], "clocked_time"),
    (["--at", "not a date"], "clocked_time"),
    (["--at", "9999-12-31T23:59"], "clocked_time"),
    (["--at", "2001-01-01T00:00"], "clocked_time"),
    (["--cron", f"{','.join(['1'] * 200)} * * * *"], "minute"),
    (["--cron", "\u0661 * * * *"], "minute"),  # an Arabic-Indic 1, which int() reads
    (["--every", "1m", "--tz", "Europe/Berlin\n"], "timezone"),
    (["--every=-1m"], "every"),
])  # fmt: skip
def test_hostile_add_arguments_get_one_line_naming_the_field(args, field):
    code, _, error = schedules("add", "odd", "--job", "apps.demo.tasks.add", *args,
                               "x=1", "y=2")  # fmt: skip
    if field is None:
        assert code == 0, error
        return
    assert code == 2
    assert error.startswith(f"{field}: ") and "\n" not in error, error
    assert not PeriodicTask.objects.filter(name="odd").exists()


@pytest.mark.parametrize(("name", "message"), [
    ("x" * 201, "name: Ensure this value has at most 200 characters (it has 201)."),
    ("nul\x00here", "name: A name cannot contain control characters (found U+0000)."),
])  # fmt: skip
def test_a_bad_name_is_refused_with_exit_status_2(name, message):
    code, _, error = schedules("add", name, "--job", "apps.demo.tasks.add", "--every", "1m",
                               "x=1", "y=2")  # fmt: skip
    assert (code, error) == (2, message)


# list, next, enable, disable, delete, run ---------------------------------------------


def test_list_shows_each_schedule_with_its_next_run():
    make_schedule("nightly", crontab=make_crontab("0 3 * * *"))
    make_schedule("paused", enabled=False)
    out = schedules("list")[1]
    nightly = next(line for line in out.splitlines() if line.startswith("nightly "))
    assert "[enabled]  At 03:00 (UTC)  next: " in nightly
    assert " 03:00 UTC (+00:00)  last: never run" in nightly
    paused = next(line for line in out.splitlines() if line.startswith("paused "))
    assert "[disabled]" in paused
    assert "next: -" in paused


def test_list_shows_when_beat_last_sent_a_schedule_whose_task_keeps_no_run_records():
    # The sweep and the alert check record no runs; beat still counts and times each send.
    sent = dt.datetime(2026, 12, 6, 17, 20, tzinfo=dt.UTC)
    make_schedule("sweep", task="apps.jobs.tasks.sweep", kwargs="{}",
                  interval=make_interval(30, "seconds"), last_run_at=sent,
                  total_run_count=14)  # fmt: skip
    out = schedules("list")[1]
    sweep = next(line for line in out.splitlines() if line.startswith("sweep "))
    assert sweep.endswith("last: sent Sun 2026-12-06 17:20 UTC (+00:00); 14 sends, no run records")


def test_list_shows_the_newest_run_record_when_there_is_one():
    task = make_schedule("nightly", total_run_count=3,
                         last_run_at=dt.datetime(2026, 12, 6, 3, 0, tzinfo=dt.UTC))  # fmt: skip
    make_run(task, state="failed")
    nightly = schedules("list")[1].splitlines()[0]
    assert "last: failed " in nightly and "sends" not in nightly


def test_next_prints_the_next_runs_in_both_zones():
    make_schedule("tokyo", crontab=make_crontab("0 9 * * *", "Asia/Tokyo"))
    lines = schedules("next", "tokyo", "-n", "3")[1].splitlines()
    assert lines[0] == "tokyo: At 09:00 (Asia/Tokyo)"
    assert len(lines) == 4
    assert all("09:00 JST (+09:00)" in line and "00:00 UTC (+00:00)" in line
               for line in lines[1:])  # fmt: skip


def test_next_shows_seconds_when_an_interval_runs_within_a_minute():
    last = dt.datetime(2026, 11, 27, 12, 0, 5, tzinfo=dt.UTC)
    make_schedule("often", interval=make_interval(10, "seconds"), last_run_at=last)
    PeriodicTask.objects.filter(name="often").update(last_run_at=last)  # save() resets it
    lines = schedules("next", "often", "-n", "3")[1].splitlines()[1:]
    assert len({line.split()[2] for line in lines}) == 3, lines
    assert all(line.split()[2].count(":") == 2 for line in lines), lines


@pytest.mark.parametrize("every", [f"{2**63}s", f"{2**31}d", "99999999999999999999m"])
def test_an_interval_too_large_for_the_column_gets_one_message(every):
    code, _, error = schedules("add", "far", "--job", "apps.demo.tasks.add", "--every", every,
                               "x=1", "y=2")  # fmt: skip
    assert (code, error) == (2, "every: Ensure this value is less than or equal to 2147483647.")
    assert not PeriodicTask.objects.filter(name="far").exists()


@pytest.mark.parametrize("count", ["99999999999", "1001", "0", "-5", "2.5", "many"])
def test_next_refuses_a_count_outside_1_to_1000_with_exit_status_2(count):
    make_schedule("often", interval=make_interval(10, "seconds"))
    code, _, error = schedules("next", "often", "-n", count)
    assert code == 2
    assert "expected a whole number from 1 to 1000" in error


def test_next_shows_up_to_1000_runs():
    make_schedule("often", interval=make_interval(10, "seconds"))
    assert len(schedules("next", "often", "-n", "1000")[1].splitlines()) == 1001


def test_enable_disable_and_delete_say_what_they_did():
    make_schedule("switch")
    assert schedules("disable", "switch")[1] == "disabled switch\n"
    assert schedules("disable", "switch")[1] == "switch was already disabled\n"
    assert schedules("enable", "switch")[1] == "enabled switch\n"
    assert schedules("delete", "switch")[1] == "deleted switch\n"
    assert not PeriodicTask.objects.filter(name="switch").exists()


def test_an_unknown_schedule_name_suggests_a_close_one():
    make_schedule("nightly report")
    code, _, error = schedules("enable", "nightly reprot")
    assert (code, error) == (2, "no schedule named 'nightly reprot'; did you mean "
                                "'nightly report'?")  # fmt: skip


def test_run_starts_a_run_recorded_as_from_the_cli_for_the_schedule():
    task = make_schedule("nightly")
    out = schedules("run", "nightly")[1]
    run = Run.objects.get()
    assert out == f"started run {run.pk} (task {run.task_id})\n"
    assert (run.source, run.schedule_name) == (Source.CLI, "nightly")
    assert run.parameters == json.loads(task.kwargs)


@pytest.mark.slow
@pytest.mark.once  # the same refusals run in-process on both databases above
def test_from_a_shell_bad_input_is_one_line_on_stderr_and_exit_status_2(subprocess_env):
    for args in (["add", "x", "--job", "apps.demo.tasks.add", "--every", "0m", "x=1", "y=1"],
                 ["add", "x", "--job", "apps.demo.tasks.add"],
                 ["next", "no such schedule"]):  # fmt: skip
        done = subprocess.run([sys.executable, "manage.py", "schedules", *args],
                              cwd=settings.BASE_DIR, env=subprocess_env, capture_output=True,
                              text=True, timeout=120)  # fmt: skip
        assert done.returncode == 2, done.stderr
        assert done.stderr.count("\n") == 1, done.stderr
        assert done.stderr.startswith("schedules: error: ")
