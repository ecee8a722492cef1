"""Switchyard's beat scheduler (see scheduler.py for what it does and why)."""

from .entries import SwitchyardEntry
from .scheduler import SwitchyardScheduler
from .sending import run_id

__all__ = ["SwitchyardEntry", "SwitchyardScheduler", "run_id"]
