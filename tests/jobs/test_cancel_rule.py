"""Whether a run may be cancelled now is one rule (dispatch.cancel_refusal), kept at every
door: the run page's Cancel button, the web, the API, `manage.py jobs cancel` and the
results admin's Terminate. A run not running yet may be, of any job; a running one only
if its job is declared cancellable (a backup is not: it runs to its end)."""

from io import StringIO

import pytest
from django.contrib.auth.models import Permission
from django.core.management import CommandError, call_command
from django.utils import timezone

from apps.jobs import inspect
from apps.jobs.models import Run, State
from tests.api.helpers import token_client
from tests.helpers import make_run, make_user
from tests.ops.makers import make_result

pytestmark = pytest.mark.django_db

BACKUP = "apps.maintenance.tasks.backup_database"  # not cancellable
COUNTDOWN = "apps.demo.tasks.countdown"  # cancellable
REFUSED = f"{BACKUP} is not cancellable: a run of it that has started runs to its end"
RESULTS = "/admin/django_celery_results/taskresult/"


@pytest.fixture
def revoked(monkeypatch) -> list[tuple[str, bool]]:
    """What the workers were told: (task id, terminate) for each revoke."""
    told = []
    monkeypatch.setattr(inspect, "revoke", lambda task_id, terminate=False, **kw: told.append(
        (task_id, terminate)) or True)  # fmt: skip
    return told


@pytest.fixture
def erin():
    return make_user("erin", jobs=(BACKUP, COUNTDOWN))


def started(job_name: str = BACKUP) -> Run:
    return make_run(job_name, state=State.STARTED, started_at=timezone.now(), worker="w1@host",
                    parameters={"keep": 3} if job_name == BACKUP else {"seconds": 60})  # fmt: skip


def untouched(run: Run) -> bool:
    after = Run.objects.get(pk=run.pk)
    return (after.state, after.cancel_requested_at, after.note) == (run.state, None, "")


def test_a_started_backup_shows_no_cancel_button_and_a_queued_one_does(client, erin):
    client.force_login(erin)
    assert client.get(started().get_absolute_url()).context["can_cancel"] is False
    assert client.get(make_run(BACKUP).get_absolute_url()).context["can_cancel"] is True
    assert client.get(started(COUNTDOWN).get_absolute_url()).context["can_cancel"] is True


def test_the_api_refuses_to_cancel_a_started_backup_with_a_409_and_changes_nothing(erin, revoked):
    run = started()
    response = token_client(erin).post(f"/api/runs/{run.pk}/cancel")
    assert response.status_code == 409
    assert response.json()["detail"] == f"Not cancelled: {REFUSED}."
    assert untouched(run) and revoked == []


def test_the_api_cancels_a_queued_backup_at_once(erin, revoked):
    run = make_run(BACKUP)
    response = token_client(erin).post(f"/api/runs/{run.pk}/cancel")
    assert (response.status_code, response.json()["state"]) == (202, State.CANCELLED)
    assert revoked == [(run.task_id, False)]


def test_the_api_stops_a_started_run_of_a_cancellable_job(erin, revoked):
    run = started(COUNTDOWN)
    assert token_client(erin).post(f"/api/runs/{run.pk}/cancel").status_code == 202
    assert Run.objects.get(pk=run.pk).cancel_requested_at is not None
    assert revoked == [(run.task_id, True)]


def test_the_web_cancel_of_a_started_backup_says_why_not_and_changes_nothing(
    client, erin, revoked
):
    run = started()
    client.force_login(erin)
    response = client.post(f"/runs/{run.pk}/cancel/", follow=True)
    assert response.redirect_chain == [(run.get_absolute_url(), 302)]
    assert [str(m) for m in response.context["messages"]] == [f"Not cancelled: {REFUSED}."]
    assert untouched(run) and revoked == []


def test_the_cli_cancel_of_a_started_backup_exits_1_as_for_a_finished_run(revoked):
    run = started()
    with pytest.raises(CommandError) as refused:
        call_command("jobs", "cancel", str(run.pk), stdout=StringIO())
    assert (refused.value.returncode, str(refused.value)) == (
        1, f"run {run.pk} not cancelled: {REFUSED}",
    )  # fmt: skip
    assert untouched(run) and revoked == []


def test_the_results_admin_terminates_a_cancellable_task_and_skips_a_backup_saying_why(
    client, erin, revoked
):
    erin.user_permissions.add(*results_permissions())
    backup, countdown = started(), started(COUNTDOWN)
    rows = [make_result(run.job_name, task_id=run.task_id, status="STARTED", worker="w1@host")
            for run in (backup, countdown)]  # fmt: skip
    client.force_login(erin)
    chosen = {"action": "terminate_running", "_selected_action": [row.pk for row in rows]}
    response = client.post(RESULTS, chosen, follow=True)
    assert [str(m) for m in response.context["messages"]] == [
        "Asked 1 task to terminate.",
        "Skipped 1 that may not be stopped now:",
        f"Not terminated: {backup.task_id}: {REFUSED}",
    ]
    assert untouched(backup)
    assert (backup.task_id, True) not in revoked and (countdown.task_id, True) in revoked


def test_the_results_admin_does_not_terminate_a_backup_task_that_recorded_no_run(
    root_client, revoked
):
    row = make_result(BACKUP, status="STARTED", worker="w1@host")
    chosen = {"action": "terminate_running", "_selected_action": [row.pk]}
    response = root_client.post(RESULTS, chosen, follow=True)
    assert f"Not terminated: {row.task_id}: {REFUSED}" in response.content.decode()
    assert revoked == []


def results_permissions():
    return Permission.objects.filter(
        content_type__app_label="django_celery_results",
        codename__in=["view_taskresult", "change_taskresult"],
    )
