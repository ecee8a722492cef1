"""System checks of beat's settings (shown by `manage.py check` and at start-up)."""

from django.conf import settings
from django.core import checks


def longest_flush_seconds() -> float:
    """How long beat's flush of a batch may still be under way: a connection to the
    broker made again, then the write's reply waited for (the flush is not retried)."""
    options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
    return float(options.get("socket_connect_timeout") or 0) + float(
        options.get("socket_timeout") or 0
    )


@checks.register()
def sweeper_waits_for_beats_flush(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """Beat records its runs "waiting to be sent" before it flushes their messages; the
    jobs sweeper sends such runs once SWEEP_PENDING_AFTER_SECONDS have passed. Sooner
    than a flush can take, it could send a run whose message is still on its way."""
    longest = longest_flush_seconds()
    if longest < settings.SWEEP_PENDING_AFTER_SECONDS:
        return []
    return [
        checks.Warning(
            f"SWEEP_PENDING_AFTER_SECONDS ({settings.SWEEP_PENDING_AFTER_SECONDS}) is not "
            f"more than beat's longest flush ({longest:g} s: the broker's "
            "socket_connect_timeout + socket_timeout).",
            hint="Raise SWEEP_PENDING_AFTER_SECONDS (default 10), or the sweeper may send "
            "a scheduled run again while beat's message for it is still on its way.",
            id="scheduling.W001",
        )
    ]
