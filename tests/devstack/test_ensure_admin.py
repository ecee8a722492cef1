"""ensure_admin: an admin account on first start, never a second one, resettable."""

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from apps.devstack.admin_account import ensure_admin

pytestmark = pytest.mark.django_db
User = get_user_model()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def run_ensure_admin() -> str:
    out = StringIO()
    call_command("ensure_admin", stdout=out)
    return out.getvalue()


def test_it_creates_an_admin_superuser_with_a_generated_password():
    password = ensure_admin()

    admin = User.objects.get()
    assert admin.username == "admin"
    assert admin.is_superuser and admin.is_staff and admin.is_active
    assert password and admin.check_password(password)


def test_a_second_call_creates_nothing_and_keeps_the_password():
    password = ensure_admin()

    assert ensure_admin() is None
    assert User.objects.count() == 1
    assert User.objects.get().check_password(password)


def test_it_creates_no_admin_when_a_superuser_already_exists():
    User.objects.create_superuser("alice", "", "alice-password")

    assert ensure_admin() is None
    assert list(User.objects.values_list("username", flat=True)) == ["alice"]


def test_a_username_and_password_reset_that_users_password():
    User.objects.create_user("ops", password="old-password")

    assert ensure_admin("ops", "new-password") is None

    ops = User.objects.get(username="ops")
    assert ops.check_password("new-password")
    assert ops.is_superuser and ops.is_staff and ops.is_active


def test_the_command_prints_the_generated_password_once(settings):
    settings.ADMIN_USER = settings.ADMIN_PASSWORD = ""

    first = run_ensure_admin()
    password = first.split("password: ")[1].split()[0]
    assert User.objects.get(username="admin").check_password(password)
    assert run_ensure_admin() == ""
    assert User.objects.count() == 1


def test_the_command_resets_the_password_from_admin_user_and_admin_password(settings):
    User.objects.create_superuser("ops", "", "old-password")
    settings.ADMIN_USER, settings.ADMIN_PASSWORD = "ops", "new-password"

    assert "Superuser 'ops' is ready." in run_ensure_admin()

    assert User.objects.get().check_password("new-password")
    assert not User.objects.filter(username="admin").exists()
