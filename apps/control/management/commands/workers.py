"""`manage.py workers list|show|grow|shrink|autoscale|shutdown`: steer workers."""

import json

from django.core.management.base import CommandError

from apps.control import actions, broker, status

from ._control import ControlCommand, whole_number


class Command(ControlCommand):
    help = (
        "List the workers answering; show one; grow or shrink its pool, set its autoscale "
        "bounds, or shut it down warmly. An operator's tool, recorded as via cli."
    )

    def add_arguments(self, parser) -> None:
        commands = self.add_subcommands(parser)
        commands.add_parser("list", help="the workers answering now")
        commands.add_parser("show", help="a worker's pool and queues").add_argument("worker")
        for name, text in [("grow", "add N pool processes"),
                           ("shrink", "remove N pool processes")]:  # fmt: skip
            action = commands.add_parser(name, help=text)
            action.add_argument("worker", metavar="WORKER")
            action.add_argument("n", metavar="N", nargs="?", type=whole_number, default=1)
        scale = commands.add_parser("autoscale", help="set autoscale bounds: MAX MIN")
        scale.add_argument("worker", metavar="WORKER")
        scale.add_argument("max", metavar="MAX", type=whole_number)
        scale.add_argument("min", metavar="MIN", type=whole_number)
        stop = commands.add_parser("shutdown", help="warm shutdown: running jobs finish first")
        stop.add_argument("worker", metavar="WORKER")

    def handle_list(self, **options) -> None:
        for name in sorted(broker.alive_workers()):
            self.stdout.write(name)

    def handle_show(self, *, worker: str, **options) -> None:
        detail = status.worker_detail(worker)
        if detail is None:
            raise CommandError(f"no worker {worker[:100]!r} is answering", returncode=2)
        self.stdout.write(json.dumps(detail, indent=2))

    def handle_grow(self, *, worker: str, n: int, **options) -> None:
        row = actions.grow_pool(self.actor, worker, n)
        self.stdout.write(f"{worker}: {row.detail['answer']}")

    def handle_shrink(self, *, worker: str, n: int, **options) -> None:
        row = actions.shrink_pool(self.actor, worker, n)
        self.stdout.write(f"{worker}: {row.detail['answer']}")

    def handle_autoscale(self, *, worker: str, max: int, min: int, **options) -> None:
        row = actions.autoscale(self.actor, worker, max, min)
        self.stdout.write(f"{worker}: {row.detail['answer']}")

    def handle_shutdown(self, *, worker: str, **options) -> None:
        actions.shutdown_worker(self.actor, worker)
        self.stdout.write(f"{worker}: warm shutdown sent; running jobs finish first")
