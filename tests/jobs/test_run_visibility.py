"""Every reader of runs asks Run.objects.visible_to (or its per-job form): a staff user
without a job's permission reads nothing about that job's runs, wherever they look.

Personas: `planner` is staff with every periodic-task permission and no job permission;
`root` is a superuser.
"""

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from apps.jobs.models import State
from tests.helpers import make_superuser, make_user
from tests.ops.makers import make_finished_run
from tests.scheduling.makers import make_run, make_schedule

pytestmark = pytest.mark.django_db
RUN_COMMAND = "apps.maintenance.tasks.run_command"


def make_planner():
    user = make_user("planner")
    user.user_permissions.add(*Permission.objects.filter(codename__endswith="periodictask"))
    return user


def recent_runs_of(client, task) -> str:
    url = reverse("admin:django_celery_beat_periodictask_change", args=[task.pk])
    html = client.get(url).content.decode()
    return html[html.index('id="switchyard-recent-runs"') :]


def test_a_schedules_page_lists_only_the_runs_its_viewer_may_see(client):
    task = make_schedule("secret dump", task=RUN_COMMAND, kwargs="{}")
    run = make_run(task, state=State.FAILED)
    link = f'href="{reverse("jobs:run", args=[run.pk])}"'
    client.force_login(make_planner())
    assert link not in recent_runs_of(client, task)
    client.force_login(make_superuser())
    assert link in recent_runs_of(client, task)


def test_the_dashboards_durations_show_only_the_jobs_the_viewer_may_see(client):
    make_finished_run(RUN_COMMAND, seconds=3)
    make_finished_run("apps.demo.tasks.add", seconds=2)
    client.force_login(make_user("dora", jobs=("apps.demo.tasks.add",)))
    page = client.get("/dashboard/charts/").content.decode()
    assert "Add two numbers" in page and "management command" not in page
    client.force_login(make_superuser())
    page = client.get("/dashboard/charts/").content.decode()
    assert "management command" in page
