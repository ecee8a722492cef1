import signal
import subprocess
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from apps.devstack import processes


class Command(BaseCommand):
    help = (
        "Run the whole stack as one supervised group: the embedded Redis (when "
        "CELERY_BROKER_URL is unset), a Celery worker, Celery beat and the web server. "
        "Ctrl-C or SIGTERM stops all of it."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--address", default="127.0.0.1:8000")
        parser.add_argument("--concurrency", type=int, default=2)

    def handle(self, *args, address: str, concurrency: int, **options) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        call_command("ensure_admin")
        children: list[subprocess.Popen] = []
        stopping = False

        def stop(signum, frame) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            self.start_children(children, address, concurrency)
            self.stdout.write(f"Switchyard is up: http://{address}/  (Ctrl-C stops it)")
            while not stopping and all(child.poll() is None for child in children):
                time.sleep(0.2)
        finally:
            processes.stop_all(children)
        if not stopping:
            self.stderr.write("A process of the stack exited; stopped the rest.")
            raise SystemExit(1)
        self.stdout.write("Stopped.")

    def start_children(
        self, children: list[subprocess.Popen], address: str, concurrency: int
    ) -> None:
        if settings.EMBEDDED_REDIS:
            port = settings.EMBEDDED_REDIS_PORT
            redis_dir = settings.EMBEDDED_REDIS_DIR
            children.append(processes.spawn(processes.redis_command(port, redis_dir)))
            processes.wait_for_redis(settings.CELERY_BROKER_URL)
            self.stdout.write(f"Embedded Redis on 127.0.0.1:{port} (data in {redis_dir})")
        children.append(processes.spawn(processes.worker_command(concurrency)))
        children.append(processes.spawn(processes.beat_command()))
        children.append(processes.spawn(processes.web_command(address)))
