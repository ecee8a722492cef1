"""Retention: old runs and results go in batches; the command parses ages."""

import subprocess
import sys
import uuid
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_celery_results.models import TaskResult

from apps.jobs.models import Run, Source, State
from apps.maintenance.retention import prune_as_run, prune_runs
from tests.helpers import make_run, make_superuser, make_user
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


@pytest.mark.parametrize("age", ["\u0661\u0660d", "\uff11\uff10d", "1\u0969h"])
def test_the_command_refuses_an_age_in_digits_of_other_scripts(age):
    make_history(old=1, new=0)
    with pytest.raises(CommandError) as refused:
        call_command("prune_runs", f"--older-than={age}")
    assert refused.value.returncode == 2
    assert "--older-than" in str(refused.value)
    assert Run.objects.count() == 1


@pytest.mark.parametrize("size", ["0", "-1", "10001", "18446744073709551616", "\u0661\u0660"])
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


# Who a prune started from the job form acts as ------------------------------------------

PRUNE = "apps.maintenance.tasks.prune_runs"
COUNTDOWN = "apps.demo.tasks.countdown"


def failed_countdowns(count: int, **kw) -> list[Run]:
    queued = timezone.now() - timedelta(days=5)
    return [make_run(COUNTDOWN, state=State.FAILED, queued_at=queued, **kw) for _ in range(count)]


def prune_started_by(client, user) -> Run:
    client.force_login(user)
    form = {"older_than_days": "1", "idempotency_key": uuid.uuid4()}
    response = client.post(f"/jobs/{PRUNE}/", form)
    assert response.status_code == 302
    return Run.objects.get(job_name=PRUNE)


def test_a_prune_started_by_a_person_deletes_only_the_runs_they_may_see(client):
    others = failed_countdowns(3)
    for run in others:
        make_result(COUNTDOWN, task_id=run.task_id, date_done=run.queued_at)
    bob = make_user("bob", staff=False, jobs=(PRUNE,))
    (own,) = failed_countdowns(1, requested_by=bob)
    make_result(COUNTDOWN, task_id=own.task_id, date_done=own.queued_at)
    assert Run.objects.visible_to(bob).filter(job_name=COUNTDOWN).count() == 1
    prune = prune_started_by(client, bob)
    counts = prune_as_run(prune.task_id, timedelta(days=1))
    assert (counts["runs"], counts["results"]) == (1, 1)
    assert set(Run.objects.filter(job_name=COUNTDOWN)) == set(others)
    assert TaskResult.objects.count() == 3


def test_a_prune_started_by_a_superuser_deletes_every_old_run(client):
    failed_countdowns(3)
    prune = prune_started_by(client, make_superuser())
    assert prune_as_run(prune.task_id, timedelta(days=1))["runs"] == 3


@pytest.mark.parametrize("source", [Source.SCHEDULE, Source.CLI, Source.SHELL])
def test_a_prune_no_person_started_deletes_every_old_run(source):
    failed_countdowns(3)
    prune = make_run(PRUNE, state=State.STARTED, source=source)
    assert prune_as_run(prune.task_id, timedelta(days=1))["runs"] == 3
    assert not Run.objects.filter(job_name=COUNTDOWN).exists()


def test_a_prune_whose_person_was_deleted_deletes_nothing():
    failed_countdowns(3)
    prune = make_run(PRUNE, state=State.STARTED, source=Source.WEB)
    with pytest.raises(PermissionError, match="no longer exists"):
        prune_as_run(prune.task_id, timedelta(days=1))
    assert Run.objects.filter(job_name=COUNTDOWN).count() == 3


# A pipeline still running waits for every earlier step's stored result --------------

SQUARES = "apps.demo.pipelines.sum_of_squares"


def pipeline_with_finished_steps(state: State) -> tuple[Run, list[Run]]:
    long_ago = timezone.now() - timedelta(days=40)
    pipeline = make_run(SQUARES, state=state, queued_at=long_ago)
    steps = [make_finished_run("apps.demo.tasks.square", finished_at=long_ago,
                               source=Source.PIPELINE, pipeline=pipeline, step=f"square {n}")
             for n in range(2)]  # fmt: skip
    for step in steps:
        make_result(task_id=step.task_id, date_done=long_ago)
    return pipeline, steps


def test_prune_keeps_the_finished_steps_of_a_pipeline_still_running_and_their_results():
    pipeline, _ = pipeline_with_finished_steps(State.STARTED)
    counts = prune_runs(timedelta(days=30))
    assert (counts["runs"], counts["results"]) == (0, 0)
    assert Run.objects.filter(pipeline=pipeline).count() == 2
    assert TaskResult.objects.count() == 2


def test_the_command_keeps_them_too(capsys):
    pipeline_with_finished_steps(State.STARTED)
    call_command("prune_runs", "--older-than", "1m")
    assert capsys.readouterr().out.strip() == ("deleted 0 runs and 0 results older than 1 minute")


def test_once_the_pipeline_has_finished_its_old_steps_go_with_it():
    pipeline_with_finished_steps(State.SUCCEEDED)
    counts = prune_runs(timedelta(days=30))
    assert (counts["runs"], counts["results"]) == (3, 2)
    assert not Run.objects.exists()
