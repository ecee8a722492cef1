"""System checks of the maintenance settings (shown by `manage.py check`)."""

from django.conf import settings
from django.core import checks

from .commands import never_allowed


@checks.register(checks.Tags.security)
def never_allowed_commands(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """Commands listed in RUN_COMMAND_ALLOWLIST that run_command refuses anyway."""
    listed = sorted(set(settings.RUN_COMMAND_ALLOWLIST) & never_allowed())
    if not listed:
        return []
    return [
        checks.Warning(
            f"RUN_COMMAND_ALLOWLIST lists {', '.join(listed)}, which run_command never runs.",
            hint="Remove them: they read or write secrets or files, run code, or bypass the "
            "site's permissions (docs/writing-jobs.md).",
            id="maintenance.W001",
        )
    ]
