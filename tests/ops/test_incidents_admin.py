"""The incidents admin shows a staff member only incidents about the jobs whose runs they
may see (the dashboard's rule, apps.jobs.permissions): an incident's detail names the
failed run's task id, which a user who may not run the job must never see."""

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from apps.ops.models import Incident, Kind
from tests.helpers import make_superuser, make_user

pytestmark = pytest.mark.django_db

LIST = "/admin/ops/incident/"
SECRET_TASK_ID = "0b6a4cde-secret-run-command-task-id"


def make_incident(kind: str, key: str, title: str, **fields) -> Incident:
    now = timezone.now()
    return Incident.objects.create(kind=kind, key=key, title=title, opened_at=now,
                                   last_seen_at=now, **fields)  # fmt: skip


@pytest.fixture
def incidents():
    return {
        "secret": make_incident(Kind.FAILED_RUN, "apps.maintenance.tasks.run_command",
                                "Run a management command failed",
                                detail=f"Run {SECRET_TASK_ID} failed.",
                                job_name="apps.maintenance.tasks.run_command"),
        "add": make_incident(Kind.FAILED_RUN, "apps.demo.tasks.add", "Add two numbers failed",
                             job_name="apps.demo.tasks.add"),
        "beat": make_incident(Kind.BEAT_DOWN, "beat", "Beat is not ticking"),
    }  # fmt: skip


def make_dora():
    dora = make_user("dora", jobs=("apps.demo.tasks.add",))
    dora.user_permissions.add(Permission.objects.get(codename="view_incident"))
    return dora


def test_a_staff_member_lists_only_incidents_of_jobs_they_may_see(client, incidents):
    client.force_login(make_dora())
    page = client.get(LIST).content.decode()
    assert "Add two numbers failed" in page and "Beat is not ticking" in page
    assert "management command" not in page


def test_the_page_of_an_incident_about_a_job_they_may_not_see_is_not_shown(client, incidents):
    client.force_login(make_dora())
    response = client.get(f"{LIST}{incidents['secret'].pk}/change/", follow=True)
    assert SECRET_TASK_ID not in response.content.decode()


def test_a_superuser_sees_every_incident(client, incidents):
    client.force_login(make_superuser())
    page = client.get(LIST).content.decode()
    assert "Run a management command failed" in page
    assert SECRET_TASK_ID in client.get(f"{LIST}{incidents['secret'].pk}/change/").content.decode()
