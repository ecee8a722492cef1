"""The admin's read-only lists: a job's rate limit, and the actions that set it, only
for those who may run the job (as the API and the job's pages)."""

import pytest
from django.contrib.auth.models import Permission

from apps.control.models import ControlAction, RateLimit, Via
from tests.helpers import make_superuser, make_user

from .helpers import ADD

# Nothing here depends on the database's vendor: the SQLite pass is enough.
pytestmark = [pytest.mark.django_db, pytest.mark.once]

SQUARE = "apps.demo.tasks.square"


@pytest.fixture
def limits():
    for job_name, rate in [(ADD, "5/m"), (SQUARE, "7/m")]:
        RateLimit.objects.create(job_name=job_name, rate=rate)
        ControlAction.objects.create(
            via=Via.CLI, label="ops", action="set_rate_limit", target=job_name,
            detail={"rate": rate},
        )  # fmt: skip
    ControlAction.objects.create(via=Via.CLI, label="ops", action="pause_queue", target="celery")


def make_controller_who_runs_square():
    user = make_user("carol", staff=True, jobs=(SQUARE,))
    for codename in ("view_ratelimit", "view_controlaction", "control_queues"):
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label="control", codename=codename)
        )
    return user


def test_a_controller_sees_only_the_rate_limits_of_jobs_they_may_run(client, limits):
    client.force_login(make_controller_who_runs_square())

    page = client.get("/admin/control/ratelimit/").text

    assert SQUARE in page and "7/m" in page
    assert ADD not in page and "5/m" not in page
    row = RateLimit.objects.get(job_name=ADD)
    assert client.get(f"/admin/control/ratelimit/{row.pk}/change/").status_code in (302, 404)


def test_a_controller_sees_queue_actions_but_not_rate_limit_actions_of_other_jobs(client, limits):
    client.force_login(make_controller_who_runs_square())

    page = client.get("/admin/control/controlaction/").text

    assert SQUARE in page and "pause_queue" in page
    assert ADD not in page
    row = ControlAction.objects.get(target=ADD)
    assert client.get(f"/admin/control/controlaction/{row.pk}/change/").status_code in (302, 404)


def test_a_superuser_sees_every_rate_limit_and_action(client, limits):
    client.force_login(make_superuser())

    assert ADD in client.get("/admin/control/ratelimit/").text
    assert ADD in client.get("/admin/control/controlaction/").text
