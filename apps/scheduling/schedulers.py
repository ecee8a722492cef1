"""Where beat's command line, docker-compose.yml and CELERY_BEAT_SCHEDULER find the
scheduler: "apps.scheduling.schedulers:SwitchyardScheduler". It lives in the package
apps.scheduling.beat."""

from .beat import SwitchyardEntry, SwitchyardScheduler, run_id

__all__ = ["SwitchyardEntry", "SwitchyardScheduler", "run_id"]
