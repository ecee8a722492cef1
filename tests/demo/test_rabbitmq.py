"""The walkthrough with RabbitMQ as the broker: a private broker and a worker subprocess."""

import contextlib
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from celery.exceptions import TimeoutError as CeleryTimeoutError
from celery.result import AsyncResult
from django_celery_results.models import TaskResult

from apps.demo.tasks import add
from apps.devstack import processes
from project import celery_app
from switchyard_dev.services import rabbitmq_server, rabbitmq_start_script

pytestmark = [
    pytest.mark.slow,
    pytest.mark.once,  # the broker is what it tests, not the database
    pytest.mark.django_db(transaction=True),  # the worker subprocess writes the results
    pytest.mark.skipif(
        rabbitmq_start_script() is None,
        reason="RabbitMQ is not installed (Debian package rabbitmq-server)",
    ),
]


def broker_processes(url: str) -> list[str]:
    """Live processes of the broker at this URL: the start script, beam, epmd and helpers.

    All of them inherit the broker's environment, so its AMQP port there tells them apart
    from any other Erlang node on the machine.
    """
    marker = f"RABBITMQ_NODE_PORT={urlsplit(url).port}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        with contextlib.suppress(OSError, IndexError):
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
            if state not in "ZX" and marker in (proc / "environ").read_bytes().split(b"\0"):
                found.append(f"{proc.name} {(proc / 'comm').read_text().strip()}")
    return found


@contextlib.contextmanager
def celery_broker(url: str):
    """Point this process's Celery app at another broker; restore the old one after."""
    previous = celery_app.conf.broker_url
    _forget_the_broker()
    celery_app.conf.broker_url = url
    try:
        yield
    finally:
        celery_app.amqp.producer_pool.force_close_all()
        celery_app.pool.force_close_all()
        _forget_the_broker()
        celery_app.conf.broker_url = previous


def _forget_the_broker() -> None:
    """Drop what the app caches per broker, so the next message uses the new one.

    The app keeps a connection pool, and its `amqp` a producer pool and the dispatcher
    of task-sent events, whose exchange type depends on the transport (fanout on Redis,
    topic on AMQP: a fanout `celeryev` on RabbitMQ stops the worker there). kombu keeps
    pools per broker URL, so the previous broker's pool is left open for the way back.
    """
    celery_app._pool = None
    celery_app.__dict__.pop("amqp", None)


def wait_for_result(sent: AsyncResult, worker) -> object:
    try:
        return sent.get(timeout=20, interval=0.02)
    except CeleryTimeoutError:
        log = Path(worker.log_path).read_text(errors="replace")[-4000:]
        pytest.fail(f"no result from the RabbitMQ worker in 20 s; its log:\n{log}")


def test_the_walkthrough_runs_through_rabbitmq_and_leaves_no_broker_process(start_process):
    with rabbitmq_server() as url:
        started = " ".join(broker_processes(url))
        assert "beam.smp" in started and "epmd" in started
        worker = start_process(
            processes.worker_command(1, "--hostname=rabbitmq-walkthrough@%h"),
            CELERY_BROKER_URL=url,
        )
        with celery_broker(url):
            sent = add.delay(4, 5)
            assert wait_for_result(sent, worker) == 9
        assert AsyncResult(sent.id, app=celery_app).get(timeout=10, interval=0.02) == 9
        stored = TaskResult.objects.get(task_id=sent.id)
        assert stored.status == "SUCCESS"
        assert stored.worker.startswith("rabbitmq-walkthrough@")
        processes.stop_all([worker])

    # A stopped process takes a moment to go; a leftover never does.
    deadline = time.monotonic() + 5
    while broker_processes(url) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert broker_processes(url) == []
