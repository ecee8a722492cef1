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
