"""ensure_admin: an admin account on first start, never a second one, resettable."""

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.management import CommandError, call_command

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


def refusal(settings, user: str, password: str) -> CommandError:
    """ensure_admin with ADMIN_USER / ADMIN_PASSWORD set so; it must refuse them."""
    settings.ADMIN_USER, settings.ADMIN_PASSWORD = user, password
    with pytest.raises(CommandError) as refused:
        run_ensure_admin()
    return refused.value


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


def test_the_generated_password_passes_the_password_validators():
    password = ensure_admin()

    validate_password(password, User.objects.get(username="admin"))


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


def test_admin_user_without_admin_password_is_refused_and_creates_no_one(settings):
    """It printed "Superuser 'carol' is ready." and made no carol."""
    error = refusal(settings, "carol", "")

    assert error.returncode == 2
    assert str(error) == (
        "ADMIN_USER is set but ADMIN_PASSWORD is not: set both (that superuser is created or "
        "its password reset), or neither (an 'admin' superuser with a generated password)"
    )
    assert not User.objects.exists()


def test_admin_password_without_admin_user_is_refused_rather_than_ignored(settings):
    """The password was dropped and an 'admin' with a generated one made instead."""
    error = refusal(settings, "", "a long password")

    assert error.returncode == 2
    assert str(error).startswith("ADMIN_PASSWORD is set but ADMIN_USER is not: set both")
    assert not User.objects.exists()


def test_a_password_the_validators_refuse_is_refused_with_their_reasons(settings):
    """ADMIN_PASSWORD='x' made a superuser with a one-character password."""
    error = refusal(settings, "carol", "x")

    assert error.returncode == 2
    assert str(error) == (
        "ADMIN_PASSWORD: This password is too short. It must contain at least 8 characters. "
        "This password is too common."
    )
    assert not User.objects.exists()


def test_a_refused_password_leaves_the_existing_users_password_alone(settings):
    User.objects.create_superuser("operator", "", "old-password")

    error = refusal(settings, "operator", "operator-2026")

    assert error.returncode == 2
    assert str(error) == "ADMIN_PASSWORD: The password is too similar to the username."
    assert User.objects.get().check_password("old-password")


def test_an_admin_user_that_is_no_valid_username_is_refused(settings):
    error = refusal(settings, "carol smith", "a long password")

    assert error.returncode == 2
    assert str(error).startswith("ADMIN_USER='carol smith': Enter a valid username.")
    assert not User.objects.exists()
