"""Retention: old runs and results go in batches; the command parses ages."""

import subprocess
import sys
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_celery_results.models import TaskResult

from apps.jobs.models import Run, State
from apps.maintenance.retention import prune_runs
from tests.helpers import make_run
from tests.ops.makers import make_finished_run, make_result

pytestmark = pytest.mark.django_db


def make_history(old: int, new: int) -> None:
    long_ago = timezone.now() - timedelta(days=40)
    for _ in range(old):
        run = make_finished_run(finished_at=long_ago)
        make_result(task_id=run.task_id, date_done=long_ago)
    for _ in range(new):
        run = make_finished_run()
        make_result(task_id=run.task_id)


def test_prune_deletes_runs_and_results_older_than_the_age_and_keeps_the_rest():
    make_history(old=7, new=3)
    counts = prune_runs(timedelta(days=30))
    assert (counts["runs"], counts["results"]) == (7, 7)
    assert Run.objects.count() == TaskResult.objects.count() == 3


def test_prune_works_in_batches_of_the_given_size():
    make_history(old=7, new=0)
    counts = prune_runs(timedelta(days=30), batch_size=3)
    assert counts["batches"] == 3 + 3  # 3 + 3 + 1 runs, then the same for results


def test_the_queries_per_batch_do_not_grow_with_the_batch():
    make_history(old=4, new=0)
    with CaptureQueriesContext(connection) as small:
        prune_runs(timedelta(days=30), batch_size=4)
    make_history(old=40, new=0)
    with CaptureQueriesContext(connection) as large:
        prune_runs(timedelta(days=30), batch_size=40)
    assert len(large) == len(small)


def test_prune_keeps_old_runs_that_are_still_active():
    make_run(state=State.STARTED, queued_at=timezone.now() - timedelta(days=40))
    assert prune_runs(timedelta(days=30))["runs"] == 0
    assert Run.objects.count() == 1


def test_a_dry_run_counts_and_deletes_nothing():
    make_history(old=2, new=1)
    assert prune_runs(timedelta(days=30), dry_run=True)["runs"] == 2
    assert Run.objects.count() == 3


def test_the_default_age_is_result_retention_days(settings):
    settings.RESULT_RETENTION_DAYS = 60
    make_history(old=2, new=0)  # 40 days old
    assert prune_runs()["runs"] == 0


def test_the_command_prints_a_one_line_summary(capsys):
    make_history(old=2, new=1)
    call_command("prune_runs", "--older-than", "30d")
    said = capsys.readouterr().out.strip()
    assert said == "deleted 2 runs and 2 results older than 30 days"


def test_the_command_dry_run_says_what_would_go(capsys):
    make_history(old=2, new=0)
    call_command("prune_runs", "--older-than", "12h", "--dry-run")
    said = capsys.readouterr().out.strip()
    assert said == "would delete 2 runs and 2 results older than 12 hours"
    assert Run.objects.count() == 2


@pytest.mark.parametrize(("age", "said"), [("1d", "1 day"), ("36h", "36 hours"),
                                           ("90m", "90 minutes"), ("1440m", "1 day")])  # fmt: skip
def test_the_command_says_the_age_as_it_reads(capsys, age, said):
    call_command("prune_runs", "--older-than", age, "--dry-run")
    assert capsys.readouterr().out.strip().endswith(f"older than {said}")


def test_the_command_says_the_default_age_in_days(capsys, settings):
    settings.RESULT_RETENTION_DAYS = 30
    call_command("prune_runs", "--dry-run")
    said = capsys.readouterr().out.strip()
    assert said == "would delete 0 runs and 0 results older than 30 days"


@pytest.mark.parametrize("age", ["30", "thirty days", "0d", "5w", "-3d", "99999999999999d",
                                 "3651d", "87625h", "9223372036854775808m"])  # fmt: skip
def test_the_command_refuses_a_bad_age_with_exit_status_2(age):
    with pytest.raises(CommandError) as refused:
        call_command("prune_runs", f"--older-than={age}")
    assert refused.value.returncode == 2
    assert "--older-than" in str(refused.value)


def test_the_command_takes_ages_up_to_ten_years():
    make_history(old=1, new=0)
    call_command("prune_runs", "--older-than", "3650d")
    assert Run.objects.count() == 1


@pytest.mark.parametrize("size", ["0", "-1", "10001", "18446744073709551616"])
def test_the_command_refuses_a_batch_size_outside_1_to_10000_with_exit_status_2(size):
    make_history(old=2, new=0)
    with pytest.raises(CommandError) as refused:
        call_command("prune_runs", "--older-than", "30d", f"--batch-size={size}")
    assert refused.value.returncode == 2
    assert "--batch-size" in str(refused.value)
    assert Run.objects.count() == 2


def test_from_a_shell_a_bad_age_is_one_line_on_stderr(subprocess_env):
    done = subprocess.run(
        [sys.executable, "manage.py", "prune_runs", "--older-than", "5w"],
        capture_output=True, text=True, timeout=120, env=subprocess_env,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "CommandError: --older-than '5w': expected a positive age like 30d, 12h or 90m, "
        "at most 3650d"
    ]
