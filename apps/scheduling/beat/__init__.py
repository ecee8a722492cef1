"""Switchyard's beat scheduler (see scheduler.py for what it does and why)."""

from .scheduler import SwitchyardEntry, SwitchyardScheduler, run_id

__all__ = ["SwitchyardEntry", "SwitchyardScheduler", "run_id"]
