import secrets

from django.contrib.auth import get_user_model


def ensure_admin(username: str = "", password: str = "") -> str | None:
    """Make sure a superuser exists; return a generated password if one was made.

    With a username and password, that superuser is created or its password reset.
    Otherwise an `admin` superuser is created once, with a random password, when the
    site has no superuser yet.
    """
    User = get_user_model()
    if username and password:
        user, _ = User.objects.get_or_create(username=username)
        user.is_staff = user.is_superuser = user.is_active = True
        user.set_password(password)
        user.save()
        return None
    if User.objects.filter(is_superuser=True).exists():
        return None
    generated = secrets.token_urlsafe(12)
    User.objects.create_superuser("admin", "", generated)
    return generated
