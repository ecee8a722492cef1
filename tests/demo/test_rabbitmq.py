"""The walkthrough with RabbitMQ as the broker: a private broker and a worker subprocess."""

import contextlib
from pathlib import Path

import pytest
from celery.exceptions import TimeoutError as CeleryTimeoutError
from celery.result import AsyncResult
from django_celery_results.models import TaskResult

from apps.demo.tasks import add
from apps.devstack import processes
from project import celery_app
from tests.services import rabbitmq_server, rabbitmq_start_script

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),  # the worker subprocess writes the results
    pytest.mark.skipif(
        rabbitmq_start_script() is None,
        reason="RabbitMQ is not installed (Debian package rabbitmq-server)",
    ),
]

ERLANG_PROGRAMS = {"beam.smp", "epmd", "erl_child_setup", "inet_gethost"}


def erlang_processes() -> set[tuple[int, str]]:
    """Live (not zombie) Erlang/RabbitMQ processes, as (pid, start time)."""
    found = set()
    for proc in Path("/proc").iterdir():
        with contextlib.suppress(OSError, IndexError):
            name = (proc / "comm").read_text().strip()
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            if name in ERLANG_PROGRAMS and fields[0] not in "ZX":
                found.add((int(proc.name), fields[19]))
    return found


@contextlib.contextmanager
def celery_broker(url: str):
    """Point this process's Celery app at another broker; restore the old one after."""
    previous = celery_app.conf.broker_url
    _switch_broker(url)
    try:
        yield
    finally:
        _switch_broker(previous)


def _switch_broker(url: str) -> None:
    # The app caches its connection and producer pools on first use.
    if celery_app.amqp._producer_pool is not None:
        celery_app.amqp._producer_pool.force_close_all()
        celery_app.amqp._producer_pool = None
    if celery_app._pool is not None:
        celery_app._pool.force_close_all()
        celery_app._pool = None
    celery_app.conf.broker_url = url


def wait_for_result(sent: AsyncResult, worker) -> object:
    try:
        return sent.get(timeout=20, interval=0.02)
    except CeleryTimeoutError:
        log = Path(worker.log_path).read_text(errors="replace")[-4000:]
        pytest.fail(f"no result from the RabbitMQ worker in 20 s; its log:\n{log}")


def test_the_walkthrough_runs_through_rabbitmq_and_leaves_no_broker_process(start_process):
    already_running = erlang_processes()
    with rabbitmq_server() as url:
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

    assert erlang_processes() <= already_running
