import signal

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from apps.devstack import processes, supervisor


class Command(BaseCommand):
    help = (
        "Run the whole stack as one supervised group: the embedded Redis (when "
        "CELERY_BROKER_URL is unset), a Celery worker, Celery beat and the web server. "
        "A process that exits is started again (after 1 s, doubling up to 30 s while it "
        "keeps failing); Ctrl-C or SIGTERM stops all of it."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--address", default="127.0.0.1:8000")
        parser.add_argument("--concurrency", type=int, default=2)

    def handle(self, *args, address: str, concurrency: int, **options) -> None:
        refuse_taken_ports(address)
        call_command("migrate", interactive=False, verbosity=0)
        call_command("ensure_admin")
        stopping = False

        def stop(signum, frame) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        children = self.children(address, concurrency)
        try:
            self.start(children)
            self.stdout.write(f"Switchyard is up: http://{address}/  (Ctrl-C stops it)")
            supervisor.watch(children, lambda: stopping)
        finally:
            supervisor.stop_children(children)
        self.stdout.write("Stopped.")

    def children(self, address: str, concurrency: int) -> list[supervisor.Child]:
        commands = {
            "worker": processes.worker_command(concurrency),
            "beat": processes.beat_command(),
            "web": processes.web_command(address),
        }
        if settings.EMBEDDED_REDIS:
            port, folder = settings.EMBEDDED_REDIS_PORT, settings.EMBEDDED_REDIS_DIR
            commands = {"redis": processes.redis_command(port, folder), **commands}
        # Redis is stopped last: the worker, beat and web still talk to it as they stop.
        return [supervisor.Child(name, command, self.stderr.write, name == "redis")
                for name, command in commands.items()]  # fmt: skip

    def start(self, children: list[supervisor.Child]) -> None:
        for child in children:
            child.start()
            if child.name == "redis":
                processes.wait_for_redis(settings.CELERY_BROKER_URL)
                self.stdout.write(
                    f"Embedded Redis on 127.0.0.1:{settings.EMBEDDED_REDIS_PORT} "
                    f"(data in {settings.EMBEDDED_REDIS_DIR})"
                )


def refuse_taken_ports(address: str) -> None:
    """Another stack (a second checkout's `make run`) may hold the default ports: say so,
    rather than have runserver fail over and over or talk to that stack's Redis."""
    host, _, port = address.rpartition(":")
    if port.isdigit() and not processes.port_is_free(host.strip("[]") or "127.0.0.1", int(port)):
        raise CommandError(
            f"{address} is already in use (another Switchyard stack?); serve elsewhere: "
            "make run ADDRESS=127.0.0.1:8001 (manage.py devstack --address ...)."
        )
    redis_port = settings.EMBEDDED_REDIS_PORT
    if settings.EMBEDDED_REDIS and not processes.port_is_free("127.0.0.1", redis_port):
        raise CommandError(
            f"127.0.0.1:{redis_port}, the embedded Redis's port, is already in use "
            "(another Switchyard stack?); choose another: EMBEDDED_REDIS_PORT=6399 make run."
        )
