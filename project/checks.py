from django.conf import settings
from django.core import checks


@checks.register(checks.Tags.security, deploy=True)
def check_secret_key_is_set(app_configs, **kwargs) -> list[checks.CheckMessage]:
    if settings.SECRET_KEY == settings.DEV_SECRET_KEY:
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
