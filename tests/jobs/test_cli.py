"""`manage.py jobs`: list, run (and wait), status, cancel, retry; exit status 0/1/2."""

import getpass
import json
import subprocess
import sys
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from apps.jobs.catalog import get_job
from apps.jobs.dispatch import start_run
from apps.jobs.models import Run, Source, State
from tests.helpers import wait_for

database = pytest.mark.django_db
with_worker = pytest.mark.django_db(transaction=True)


def jobs(*args: str) -> tuple[int, str, str]:
    """Run `manage.py jobs ...` in-process: (exit status, stdout, stderr or error)."""
    out, err = StringIO(), StringIO()
    try:
        call_command("jobs", *args, stdout=out, stderr=err)
    except CommandError as error:
        return error.returncode, out.getvalue(), str(error)
    return 0, out.getvalue(), err.getvalue()


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=settings.BASE_DIR, env=env,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def make_run(job_name: str = "apps.demo.tasks.add", **params) -> Run:
    params = params or {"x": 1, "y": 2}
    return start_run(get_job(job_name), params, source=Source.CLI, label="someone")


# list ---------------------------------------------------------------------------------


def test_list_shows_the_demo_jobs_with_typed_parameters_queue_and_cancellable():
    code, out, _ = jobs("list")
    assert code == 0
    assert "apps.demo.tasks.add\n    Add two numbers (Demo)" in out
    assert "parameters: x: int -9007199254740991..9007199254740991 (required), y: int" in out
    assert "parameters: seconds: int 0..3600 = 10" in out
    assert "parameters: failures: int 0..10 = 2" in out
    countdown = out.split("apps.demo.tasks.countdown\n", 1)[1]
    assert countdown.splitlines()[2].strip() == "queue: celery; cancellable: yes"


def test_list_shows_the_item_type_of_a_list_parameter():
    code, out, _ = jobs("list")
    assert code == 0
    assert "parameters: numbers: list[int -9007199254740991..9007199254740991] (required)" in out


def test_list_as_json_gives_each_jobs_parameter_schema():
    code, out, _ = jobs("list", "--json")
    listed = {job["name"]: job for job in json.loads(out)}
    add = listed["apps.demo.tasks.add"]
    assert code == 0
    assert add["parameters"]["required"] == ["x", "y"]
    assert add["parameters"]["properties"]["x"]["type"] == "integer"
    assert listed["apps.demo.tasks.countdown"]["cancellable"] is True


# run: bad input -----------------------------------------------------------------------


@database
def test_run_with_a_bad_value_exits_2_naming_the_parameter_and_starts_nothing():
    code, _, error = jobs("run", "apps.demo.tasks.add", "x=4", "y=oops")
    assert (code, error) == (2, "y: Enter a whole number.")
    assert Run.objects.count() == 0


@database
@pytest.mark.parametrize(
    ("tokens", "message"),
    [
        (["x=1", "y=2", "z=3"], "z: unknown parameter"),
        (["x=1"], "y: This field is required."),
        (["x=1", "x=2", "y=3"], "x: given more than once"),
        (["x=1", "y"], "y: expected key=value"),
        (["x=1", "=2"], "=2: expected key=value"),
    ],
)
def test_unknown_missing_repeated_or_malformed_parameters_exit_2(tokens, message):
    code, _, error = jobs("run", "apps.demo.tasks.add", *tokens)
    assert (code, error) == (2, message)
    assert Run.objects.count() == 0


@database
def test_an_unknown_job_exits_2_and_suggests_the_closest_name():
    code, _, error = jobs("run", "apps.demo.tasks.ad", "x=1")
    assert code == 2
    assert error == "unknown job 'apps.demo.tasks.ad'; did you mean apps.demo.tasks.add?"
    assert Run.objects.count() == 0


@pytest.mark.once  # refused before any query; in-process on both databases just above
@with_worker
def test_bad_input_from_a_shell_exits_2_with_one_line_and_no_traceback(subprocess_env):
    done = manage("jobs", "run", "apps.demo.tasks.add", "x=4", "y=oops", env=subprocess_env)
    assert done.returncode == 2
    assert done.stderr.splitlines() == ["jobs: error: y: Enter a whole number."]
    assert Run.objects.count() == 0

    done = manage("jobs", "frobnicate", env=subprocess_env)  # refused by argparse itself
    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr.startswith("jobs: error: argument ACTION: invalid choice: 'frobnicate'")


# run: recorded and sent ---------------------------------------------------------------


@database
@pytest.mark.parametrize("numbers", ["1,2,x", "[1,2,true]"])
def test_a_bad_item_of_a_list_exits_2_naming_the_parameter_and_the_item(numbers):
    code, _, error = jobs("run", "apps.demo.tasks.total", f"numbers={numbers}")
    assert (code, error) == (2, "numbers: item 3: Enter a whole number.")
    assert Run.objects.count() == 0


@database
def test_run_records_a_cli_run_by_the_os_user_and_prints_its_ids():
    code, out, _ = jobs("run", "apps.demo.tasks.add", "x=4", "y=5")
    run = Run.objects.get()
    assert code == 0
    assert f"started run {run.pk} (task {run.task_id})" in out
    assert (run.source, run.requested_by_label) == (Source.CLI, getpass.getuser())
    assert run.requested_by is None and run.parameters == {"x": 4, "y": 5}


@with_worker
def test_run_wait_prints_the_result_and_exits_0(celery_worker):
    code, out, _ = jobs("run", "apps.demo.tasks.add", "x=4", "y=5", "--wait")
    assert code == 0
    assert out.splitlines()[-1] == "9"
    assert Run.objects.get().state == State.SUCCEEDED


@with_worker
@pytest.mark.parametrize("numbers", ["[1,2,3]", "1,2,3"])
def test_a_list_of_integers_is_added_up_by_the_worker(celery_worker, numbers):
    code, out, error = jobs("run", "apps.demo.tasks.total", f"numbers={numbers}", "--wait")
    assert (code, out.splitlines()[-1]) == (0, "6"), error
    assert Run.objects.get().parameters == {"numbers": [1, 2, 3]}


@with_worker
def test_run_wait_json_prints_the_finished_run(celery_worker):
    code, out, _ = jobs("run", "apps.demo.tasks.add", "x=4", "y=5", "--wait", "--json")
    shown = json.loads(out)
    assert code == 0
    assert (shown["state"], shown["result"], shown["source"]) == ("succeeded", 9, "cli")
    assert shown["requested_by"] == getpass.getuser() and shown["worker"]


@with_worker
def test_a_run_started_from_a_shell_waits_for_the_worker_and_is_recorded_as_cli(
    celery_worker, subprocess_env
):
    args = ["jobs", "run", "apps.demo.tasks.add", "x=4", "y=5", "--wait"]
    done = manage(*args, env=subprocess_env)
    assert (done.returncode, done.stdout.splitlines()[-1]) == (0, "9"), done.stderr
    run = Run.objects.get()
    assert (run.source, run.requested_by_label, run.state) == ("cli", getpass.getuser(),
                                                              "succeeded")  # fmt: skip


@pytest.mark.slow
@pytest.mark.postgres_pass  # one database is enough for 15 s of retries (1+2+4+4+4 s)
@with_worker
def test_run_wait_exits_1_when_the_job_fails_after_its_retries(celery_worker):
    code, _, error = jobs("run", "apps.demo.tasks.flaky", "failures=9", "--wait")
    run = Run.objects.get()
    assert code == 1
    assert error.startswith(f"run {run.pk} failed: ") and "FlakyError" in error
    assert (run.state, run.retries) == (State.FAILED, 5)


@database
def test_run_wait_exits_124_when_it_times_out_so_a_script_can_tell_it_from_a_failure():
    # Inside the test's transaction the message is never sent: the run cannot finish.
    code, _, error = jobs("run", "apps.demo.tasks.add", "x=1", "y=2", "--wait",
                          "--timeout", "0.3")  # fmt: skip
    run = Run.objects.get()
    assert code == 124
    assert error == f"timed out after 0.3 s; run {run.pk} goes on ({run.state})"


@database
@pytest.mark.parametrize("timeout", ["0", "-5", "nan", "inf", "1e400", "31536001"])
def test_run_refuses_a_timeout_that_is_not_a_positive_number_up_to_a_year(timeout):
    code, _, error = jobs("run", "apps.demo.tasks.add", "x=1", "y=2", "--wait",
                          "--timeout", timeout)  # fmt: skip
    assert code == 2
    assert "at most 31536000" in error
    assert not Run.objects.exists()


@database
def test_run_refuses_a_timeout_without_wait_and_starts_nothing():
    code, _, error = jobs("run", "apps.demo.tasks.add", "x=1", "y=2", "--timeout", "5")
    assert (code, error) == (2, "--timeout needs --wait")
    assert not Run.objects.exists()


@database
def test_retry_refuses_a_timeout_without_wait_and_starts_nothing():
    run = make_run()
    code, _, error = jobs("retry", str(run.pk), "--timeout", "5")
    assert (code, error) == (2, "--timeout needs --wait")
    assert Run.objects.count() == 1


# status, cancel, retry ----------------------------------------------------------------


@database
def test_status_shows_state_progress_timings_and_who():
    run = make_run("apps.demo.tasks.countdown", seconds=10)
    progress = {"progress_done": 3, "progress_total": 10, "progress_message": "7 s to go"}
    Run.objects.filter(pk=run.pk).update(state=State.PROGRESS, **progress)
    code, out, _ = jobs("status", str(run.pk))
    assert code == 0
    assert out.splitlines()[0] == f"run {run.pk}: apps.demo.tasks.countdown: progress"
    assert "progress:     3/10 (30%) 7 s to go" in out
    assert "requested:    someone via cli" in out
    assert "parameters:   seconds=10" in out and "queued:" in out


@database
def test_status_finds_a_run_by_task_id_and_speaks_json():
    run = make_run()
    code, out, _ = jobs("status", run.task_id, "--json")
    shown = json.loads(out)
    assert code == 0
    assert (shown["id"], shown["job"], shown["parameters"]) == (run.pk, run.job_name,
                                                                {"x": 1, "y": 2})  # fmt: skip


@database
@pytest.mark.parametrize("action", ["status", "cancel", "retry"])
def test_an_unknown_run_id_exits_2(action):
    code, _, error = jobs(action, "424242")
    assert (code, error) == (2, "no run with id or task id '424242'")


@database
def test_cancel_of_a_run_not_yet_started_cancels_it():
    run = make_run()
    code, out, _ = jobs("cancel", str(run.pk))
    run.refresh_from_db()
    assert (code, out.strip()) == (0, f"run {run.pk} cancelled")
    assert run.state == State.CANCELLED


@database
def test_cancel_of_a_finished_run_exits_1_and_says_so():
    run = make_run()
    Run.objects.filter(pk=run.pk).update(state=State.SUCCEEDED)
    code, _, error = jobs("cancel", str(run.pk))
    assert (code, error) == (1, f"run {run.pk} not cancelled: it already succeeded")


@with_worker
def test_cancel_stops_a_running_countdown(celery_worker):
    run = make_run("apps.demo.tasks.countdown", seconds=30)
    wait_for(lambda: Run.objects.filter(pk=run.pk, progress_done__gte=1).exists())
    code, _, _ = jobs("cancel", str(run.pk))
    assert code == 0
    wait_for(lambda: Run.objects.filter(pk=run.pk, state=State.CANCELLED).exists(), timeout=15)
    assert "cancelled" in jobs("status", str(run.pk))[1].splitlines()[0]


@with_worker
def test_retry_runs_again_as_a_cli_run_linked_to_the_old_one(celery_worker):
    first = make_run(x=2, y=3)
    code, out, _ = jobs("retry", first.task_id, "--wait")
    again = Run.objects.exclude(pk=first.pk).get()
    assert (code, out.splitlines()[-1]) == (0, "5")
    assert (again.rerun_of, again.source) == (first, "cli")
    assert again.requested_by_label == getpass.getuser()


@database
def test_status_reads_the_run_and_its_result_in_two_queries(django_assert_num_queries):
    run = make_run()
    Run.objects.filter(pk=run.pk).update(state=State.SUCCEEDED)
    with django_assert_num_queries(2):
        assert jobs("status", str(run.pk))[0] == 0


@database
def test_status_of_a_run_not_started_reads_only_the_run(django_assert_num_queries):
    run = make_run()
    with django_assert_num_queries(1):
        assert jobs("status", str(run.pk))[0] == 0
