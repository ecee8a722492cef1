"""`manage.py queues list|pause|resume|purge`: steer queues from a shell."""

from django.core.management.base import CommandError

from apps.control import actions, broker, status

from ._control import ControlCommand


class Command(ControlCommand):
    help = (
        "List queues; pause or resume one (stored: workers started later honour it); "
        "purge one (its runs end cancelled). An operator's tool, recorded as via cli."
    )

    def add_arguments(self, parser) -> None:
        commands = self.add_subcommands(parser)
        commands.add_parser("list", help="queues, waiting messages, consumers, paused")
        for name, text in [("pause", "workers take nothing new from the queue"),
                           ("resume", "workers configured for it consume it again")]:  # fmt: skip
            commands.add_parser(name, help=text).add_argument("queue", metavar="QUEUE")
        purge = commands.add_parser("purge", help="drop every waiting message of the queue")
        purge.add_argument("queue", metavar="QUEUE")
        purge.add_argument("--yes", action="store_true", help="drop them (without: only count)")

    def handle_list(self, **options) -> None:
        for q in status.queue_rows():
            waiting = "?" if q.waiting is None else q.waiting
            state = "PAUSED" if q.paused else "consuming"
            self.stdout.write(f"{q.name}\t{state}\twaiting {waiting}\tconsumers {q.consumers}")

    def handle_pause(self, *, queue: str, **options) -> None:
        row = actions.pause_queue(self.actor, queue)
        self.stdout.write(f"queue {queue} paused: workers take nothing new from it")
        self.warn_if_not_told(row)

    def handle_resume(self, *, queue: str, **options) -> None:
        row = actions.resume_queue(self.actor, queue)
        self.stdout.write(f"queue {queue} resumed")
        self.warn_if_not_told(row)

    def handle_purge(self, *, queue: str, yes: bool, **options) -> None:
        queue = actions.known_queue(queue)
        if not yes:
            waiting = broker.waiting(queue)
            raise CommandError(
                f"{waiting} messages waiting in {queue} would be dropped; nothing done "
                "(pass --yes to drop them)"
            )
        purged = actions.purge_queue(self.actor, queue)
        self.stdout.write(
            f"queue {queue} purged: {purged.dropped} messages dropped, "
            f"{purged.cancelled} runs cancelled"
        )
