"""System checks of the maintenance settings (shown by `manage.py check`)."""

from django.conf import settings
from django.core import checks

from .commands import NEVER_ALLOWED


@checks.register(checks.Tags.security)
def never_allowed_commands(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """Commands listed in RUN_COMMAND_ALLOWLIST that run_command refuses anyway."""
    listed = sorted(set(settings.RUN_COMMAND_ALLOWLIST) & NEVER_ALLOWED)
    if not listed:
        return []
    return [
        checks.Warning(
            f"RUN_COMMAND_ALLOWLIST lists {', '.join(listed)}, which run_command never runs.",
            hint="Remove them: they read or write secrets or files, or run code "
            "(docs/writing-jobs.md).",
            id="maintenance.W001",
        )
    ]
