"""What `manage.py queues`, `workers` and `ratelimits` share: the actor and the errors.

These are operators' tools (like `manage.py schedules`): whoever has the shell may act;
each action is recorded under the shell's user name with via "cli". Exit status: 0
done; 1 refused by a worker or not confirmed; 2 bad input (one line on stderr).
"""

import argparse

from django.core.management.base import CommandError

from apps.control import actions, rules
from apps.control.rules import Actor, ControlError
from apps.jobs.command_base import BAD_INPUT, OneLineErrorsCommand

UNKNOWN_FIELDS = ("queue", "worker", "job")


class ControlCommand(OneLineErrorsCommand):
    def handle(self, *args, action: str, **options) -> None:
        try:
            getattr(self, f"handle_{action.replace('-', '_')}")(**options)
        except ControlError as error:
            bad_input = bool(error.field)
            raise CommandError(str(error), returncode=BAD_INPUT if bad_input else 1) from None

    @property
    def actor(self) -> Actor:
        return Actor.cli()

    def warn_if_not_told(self, row) -> None:
        """Stored, but the broker did not take the broadcast: say so (exit status 0)."""
        if getattr(row, "told_workers", None) is False:
            self.stderr.write(f"warning: stored, but {actions.NOT_TOLD}")


def whole_number(raw: str) -> int:
    """argparse's type for numbers: rules.whole_number (ASCII digits only)."""
    try:
        return rules.whole_number(raw, "")
    except ControlError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
