"""What `manage.py jobs` and `manage.py schedules` share: bad input ends in one line.

From a shell, any bad input (arguments argparse refuses, an unknown job or schedule,
parameters that fail validation) prints `<command>: error: <reason>` on stderr and exits
with the CommandError's status (2 for bad input), with no usage text and no traceback.
Called from code (`call_command`), the CommandError is raised as usual.
"""

import sys

from django.core.management.base import BaseCommand, CommandError, CommandParser

BAD_INPUT = 2


class OneLineParser(CommandParser):
    def error(self, message: str):
        raise CommandError(message, returncode=BAD_INPUT)

    def parse_known_args(self, args=None, namespace=None):
        """`key=value` words may follow the options too (argparse takes them only before)."""
        namespace, extras = super().parse_known_args(args, namespace)
        if any(action.dest == "params" for action in self._actions):
            words = [word for word in extras if not word.startswith("-")]
            namespace.params = [*(namespace.params or []), *words]
            extras = [word for word in extras if word.startswith("-")]
        return namespace, extras


class OneLineErrorsCommand(BaseCommand):
    """Subcommands are added with `add_subcommands`, which makes them OneLineParsers."""

    def create_parser(self, prog_name: str, subcommand: str, **kwargs) -> CommandParser:
        self.command_name = subcommand
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.error = OneLineParser.error.__get__(parser)
        return parser

    def add_subcommands(self, parser):
        return parser.add_subparsers(dest="action", required=True, metavar="ACTION",
                                     parser_class=OneLineParser)  # fmt: skip

    def run_from_argv(self, argv) -> None:
        try:
            super().run_from_argv(argv)
        except CommandError as error:  # from the parser, before execute()
            self.exit_with(error)

    def execute(self, *args, **options):
        try:
            return super().execute(*args, **options)
        except CommandError as error:
            if not getattr(self, "_called_from_command_line", False) or options["traceback"]:
                raise
            self.exit_with(error)

    def exit_with(self, error: CommandError):
        self.stderr.write(f"{self.command_name}: error: {error}")
        sys.exit(error.returncode)
