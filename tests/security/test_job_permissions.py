"""One rule at every door: a staff user who may not run a job can start it nowhere.

`planner` is staff with every periodic-task permission and may view task results, but
holds no job permission. They started runs of `run_command` and of a plain Celery task
once (so they still see them), and may no longer start either, by any entry point:
job form, API, schedule admin (save, run now), re-run from the web, the API or the
results admin. A superuser may, at every door.
"""

import json
import uuid

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from django_celery_results.models import TaskResult

from apps.jobs.models import Run, Source, State
from apps.scheduling.forms import form_data
from tests.api.helpers import token_client
from tests.helpers import make_superuser, make_user
from tests.ops.makers import make_result
from tests.scheduling.makers import make_schedule

pytestmark = pytest.mark.django_db

RUN_COMMAND = "apps.maintenance.tasks.run_command"
MUL = "apps.demo.tasks.mul"
SCHEDULES = reverse("admin:django_celery_beat_periodictask_changelist")
RESULTS = "/admin/django_celery_results/taskresult/"


def make_planner():
    user = make_user("planner")
    user.user_permissions.add(
        *Permission.objects.filter(codename__endswith="periodictask"),
        Permission.objects.get(codename="view_taskresult"),
    )
    return user


def make_failed_run(job_name: str, user, parameters: dict) -> Run:
    run = Run.objects.create(
        task_id=str(uuid.uuid4()), job_name=job_name, parameters=parameters, source=Source.WEB,
        requested_by=user, state=State.FAILED, queued_at=timezone.now(),
    )  # fmt: skip
    make_result(job_name, task_id=run.task_id, status="FAILURE")
    return run


def said(response) -> str:
    return " ".join(str(m) for m in get_messages(response.wsgi_request))


def new_runs(before: set[int]) -> list[Run]:
    return list(Run.objects.exclude(pk__in=before))


# Each door: (name, job, how to knock). A knock returns True if the door opened.


def web_form(client, user, job, old_run):
    response = client.post(f"/jobs/{job}/", {"command": "check", "x": 1, "y": 2,
                                             "idempotency_key": uuid.uuid4()})  # fmt: skip
    return response.status_code == 302


def api_start(client, user, job, old_run):
    body = {"parameters": {"command": "check"} if job == RUN_COMMAND else {"x": 1, "y": 2}}
    response = token_client(user).post(
        f"/api/jobs/{job}/runs", body, content_type="application/json"
    )
    return response.status_code == 201


def schedule_add(client, user, job, old_run):
    params = {"param-command": "check"} if job == RUN_COMMAND else {
        "kwargs": json.dumps({"x": 1, "y": 2})}  # fmt: skip
    data = form_data(name=f"door {job}", regtask=job, **params)
    client.post(reverse("admin:django_celery_beat_periodictask_add"), data)
    return PeriodicTask.objects.filter(name=f"door {job}").exists()


def schedule_run_now(client, user, job, old_run):
    kwargs = {"command": "check"} if job == RUN_COMMAND else {"x": 1, "y": 2}
    task = make_schedule(f"now {job}", task=job, kwargs=json.dumps(kwargs))
    response = client.post(SCHEDULES, {"action": "run_now", "_selected_action": [task.pk]},
                           follow=True)  # fmt: skip
    return "1 run started." in said(response)


def web_rerun(client, user, job, old_run):
    response = client.post(f"/runs/{old_run.pk}/rerun/", {"idempotency_key": str(uuid.uuid4())})
    return response.status_code == 302


def api_retry(client, user, job, old_run):
    return token_client(user).post(f"/api/runs/{old_run.pk}/retry").status_code == 201


def results_retry(client, user, job, old_run):
    result = TaskResult.objects.get(task_id=old_run.task_id)
    data = {"action": "retry_failed", "_selected_action": [result.pk]}
    return "Started 1 run again." in said(client.post(RESULTS, data, follow=True))


CATALOG_DOORS = [web_form, api_start]
EVERY_JOB_DOORS = [schedule_add, schedule_run_now, web_rerun, api_retry, results_retry]
CASES = [(door, RUN_COMMAND) for door in CATALOG_DOORS + EVERY_JOB_DOORS] + [
    (door, MUL) for door in EVERY_JOB_DOORS
]


@pytest.mark.parametrize(("door", "job"), CASES, ids=lambda v: getattr(v, "__name__", v))
def test_a_user_who_may_not_run_a_job_cannot_start_it_through_any_door(client, door, job):
    planner = make_planner()
    old_run = make_failed_run(job, planner, {"command": "check"} if job == RUN_COMMAND else {})
    client.force_login(planner)
    before = set(Run.objects.values_list("pk", flat=True))
    assert door(client, planner, job, old_run) is False
    assert new_runs(before) == []


@pytest.mark.parametrize(("door", "job"), CASES, ids=lambda v: getattr(v, "__name__", v))
def test_a_superuser_may_start_any_job_through_every_door(client, door, job):
    root = make_superuser()
    old_run = make_failed_run(job, root, {"command": "check"} if job == RUN_COMMAND else {})
    client.force_login(root)
    assert door(client, root, job, old_run) is True
