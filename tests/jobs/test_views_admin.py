"""The runs admin: read-only, searchable by task id, no query per row."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.helpers import make_run, make_superuser, make_user

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/jobs/run/"


@pytest.fixture
def root(client):
    user = make_superuser()
    client.force_login(user)
    return user


def test_the_runs_admin_finds_a_run_by_its_task_id(client, root):
    wanted, _ = make_run(), make_run()
    response = client.get(CHANGELIST, {"q": wanted.task_id})
    assert list(response.context["cl"].result_list) == [wanted]


def test_the_runs_admin_is_read_only(client, root):
    run = make_run()
    assert client.get(f"{CHANGELIST}add/").status_code == 403
    assert client.post(f"{CHANGELIST}{run.pk}/delete/", {"post": "yes"}).status_code == 403
    page = client.get(f"{CHANGELIST}{run.pk}/change/")
    assert page.status_code == 200 and b'name="_save"' not in page.content


def test_the_runs_admin_list_queries_do_not_grow_with_rows(client, root):
    bob = make_user("bob")
    make_run(requested_by=bob)
    client.get(CHANGELIST)
    with CaptureQueriesContext(connection) as few:
        client.get(CHANGELIST)
    for _ in range(20):
        make_run(requested_by=bob)
    with CaptureQueriesContext(connection) as many:
        client.get(CHANGELIST)
    assert len(many) == len(few)


def make_viewer(username: str = "vera", jobs: tuple[str, ...] = ()):
    """Staff who may view runs in the admin, and run only `jobs`."""
    from django.contrib.auth.models import Permission

    user = make_user(username, jobs=jobs)
    user.user_permissions.add(Permission.objects.get(codename="view_run"))
    return user


def test_the_runs_admin_lists_only_the_runs_a_staff_user_may_see(client):
    client.force_login(make_viewer(jobs=("apps.demo.tasks.add",)))
    mine = make_run("apps.demo.tasks.add")
    make_run("apps.maintenance.tasks.run_command", parameters={"command": "dumpdata"})
    response = client.get(CHANGELIST)
    assert list(response.context["cl"].result_list) == [mine]


def test_a_run_the_user_may_not_see_has_no_admin_page_for_them(client):
    client.force_login(make_viewer())
    secret = make_run("apps.maintenance.tasks.run_command", parameters={"command": "dumpdata"})
    response = client.get(f"{CHANGELIST}{secret.pk}/change/", follow=True)
    assert b"dumpdata" not in response.content
    assert response.redirect_chain and response.redirect_chain[-1][0] == "/admin/"
