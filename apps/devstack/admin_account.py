import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError


class AccountRefused(ValueError):
    """ADMIN_USER / ADMIN_PASSWORD cannot make the account; the message names which."""


def ensure_admin(username: str = "", password: str = "") -> str | None:
    """Make sure a superuser exists; return a generated password if one was made.

    With a username and password, that superuser is created or its password reset; the
    password must pass AUTH_PASSWORD_VALIDATORS. Otherwise an `admin` superuser is created
    once, with a random password, when the site has no superuser yet. One of the two
    without the other, an invalid username or a refused password: AccountRefused, and
    nothing is saved.
    """
    if username or password:
        _set_superuser(_checked_user(username, password), password)
        return None
    User = get_user_model()
    if User.objects.filter(is_superuser=True).exists():
        return None
    generated = secrets.token_urlsafe(12)
    User.objects.create_superuser("admin", "", generated)
    return generated


def _checked_user(username: str, password: str):
    """The user ADMIN_USER names (unsaved if new), once both variables pass."""
    if not (username and password):
        given, missing = (
            ("ADMIN_USER", "ADMIN_PASSWORD") if username else ("ADMIN_PASSWORD", "ADMIN_USER")
        )
        raise AccountRefused(
            f"{given} is set but {missing} is not: set both (that superuser is created or its "
            "password reset), or neither (an 'admin' superuser with a generated password)"
        )
    User = get_user_model()
    try:
        User._meta.get_field(User.USERNAME_FIELD).clean(username, None)
    except ValidationError as exc:
        raise AccountRefused(f"ADMIN_USER={username!r}: {' '.join(exc.messages)}") from None
    user = User.objects.filter(**{User.USERNAME_FIELD: username}).first()
    user = user or User(**{User.USERNAME_FIELD: username})
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise AccountRefused(f"ADMIN_PASSWORD: {' '.join(exc.messages)}") from None
    return user


def _set_superuser(user, password: str) -> None:
    user.is_staff = user.is_superuser = user.is_active = True
    user.set_password(password)
    user.save()
