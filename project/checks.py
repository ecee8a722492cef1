from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured


def development_key_in_use() -> bool:
    """SECRET_KEY is unset: settings fell back to the public development key."""
    return settings.SECRET_KEY == settings.DEV_SECRET_KEY


def refuse_to_serve_with_the_development_key() -> None:
    """Called by the serving entry points (project.wsgi, project.asgi, hence gunicorn and
    runserver): with DEBUG off, serving with a key anyone can read would let anyone sign
    sessions and tokens. manage.py commands and the tests do not call it."""
    if development_key_in_use() and not settings.DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set: refusing to serve with the public development key "
            "while DEBUG is off. Set SECRET_KEY in the environment (see .env.example); "
            "on a laptop, `make run` sets DEBUG=true."
        )


@checks.register(checks.Tags.security, deploy=True)
def check_secret_key_is_set(app_configs, **kwargs) -> list[checks.CheckMessage]:
    if development_key_in_use():
        return [
            checks.Error(
                "SECRET_KEY is the development fallback.",
                hint="Set SECRET_KEY in the environment (see .env.example).",
                id="switchyard.E001",
            )
        ]
    return []


@checks.register(checks.Tags.security, deploy=True)
def check_debug_is_off(app_configs, **kwargs) -> list[checks.CheckMessage]:
    if settings.DEBUG:
        return [checks.Error("DEBUG is on.", hint="Unset DEBUG.", id="switchyard.E002")]
    return []
