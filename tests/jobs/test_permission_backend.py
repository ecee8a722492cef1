"""The site's auth backend (apps.jobs.permissions.ModelBackend) reads a user's
permissions in one statement: the same permissions Django's own backend finds."""

import pytest
from django.contrib.auth import backends
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.jobs.permissions import ModelBackend, may_run
from tests.helpers import make_user

pytestmark = pytest.mark.django_db
ADD, COUNTDOWN = "apps.demo.tasks.add", "apps.demo.tasks.countdown"


def fresh(user):
    return type(user).objects.get(pk=user.pk)  # no per-request caches


def test_a_users_own_and_group_permissions_are_djangos_own_in_one_statement():
    user = make_user("carol", jobs=(ADD,))
    group = Group.objects.create(name="operators")
    group.permissions.add(Permission.objects.get(codename="view_all_runs"),
                          Permission.objects.get(codename=f"run_{COUNTDOWN}"))  # fmt: skip
    user.groups.add(group)
    django_own = backends.ModelBackend()

    ours, theirs = fresh(user), fresh(user)
    with CaptureQueriesContext(connection) as queries:
        found = ModelBackend().get_all_permissions(ours)

    assert len(queries) == 1
    assert found == django_own.get_all_permissions(theirs)
    assert {"jobs.run_apps.demo.tasks.add", "jobs.view_all_runs"} <= found
    assert ModelBackend().get_group_permissions(ours) == django_own.get_group_permissions(
        fresh(user)
    )
    assert ModelBackend().get_user_permissions(ours) == django_own.get_user_permissions(
        fresh(user)
    )


def test_may_run_asks_once_per_request_and_refuses_what_is_not_granted():
    user = fresh(make_user("dave", jobs=(ADD,)))
    with CaptureQueriesContext(connection) as queries:
        assert may_run(user, ADD)
        assert not may_run(user, COUNTDOWN)
    assert len(queries) == 1


def test_inactive_users_and_object_permissions_have_none():
    user = make_user("erin", jobs=(ADD,))
    assert ModelBackend().get_all_permissions(fresh(user), obj=object()) == set()
    user.is_active = False
    user.save()
    assert ModelBackend().get_all_permissions(fresh(user)) == set()
    assert not may_run(fresh(user), ADD)


def test_signing_in_through_the_login_page_uses_this_backend(client):
    user = make_user("frank", jobs=(ADD,))  # staff: the admin's login page takes them
    user.set_password("a long pass phrase 42")
    user.save()
    response = client.post("/admin/login/", {"username": "frank",
                                             "password": "a long pass phrase 42"})  # fmt: skip
    assert response.status_code == 302
    assert client.session["_auth_user_backend"] == "apps.jobs.permissions.ModelBackend"
    assert client.get(f"/jobs/{ADD}/").status_code == 200
