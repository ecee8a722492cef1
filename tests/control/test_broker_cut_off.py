"""Pages, the API and the CLI while the web host is cut off from the broker (issue 14,
scenario 4): a TCP connection opens, then nothing ever answers. Every door answers
within seconds, says the broker is unreachable, and a second ask while it is down
does not wait again."""

import io
import socket
import threading
import time

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from apps.control.models import QueuePause
from apps.jobs import inspect
from apps.jobs.models import State
from project import celery_app
from tests.api.helpers import token_client
from tests.helpers import make_run, make_superuser, point_celery_at

pytestmark = [pytest.mark.django_db, pytest.mark.once]

WORKER = "gone@nowhere"
# A door that waited on the app's pooled broker connections would take their socket
# timeout, 5 s (settings.CELERY_BROKER_TRANSPORT_OPTIONS); asking with inspect.TIMEOUT
# (0.2 s in these tests, tests/control/conftest.py) takes about that.
FAST = 3.0


@pytest.fixture
def cut_off(redis_url):
    """A broker address that accepts TCP connections and then never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(listener.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    point_celery_at(f"redis://127.0.0.1:{listener.getsockname()[1]}/0")
    yield
    point_celery_at(redis_url)
    listener.close()
    for connection in held:
        connection.close()


def timed(door):
    started = time.monotonic()
    answer = door()
    return answer, time.monotonic() - started


def test_the_dashboard_says_the_broker_is_unreachable_within_seconds(cut_off, root_client):
    page, took = timed(lambda: root_client.get("/"))

    assert page.status_code == 200
    assert "Broker unreachable" in page.text
    assert took < FAST


def test_a_worker_page_says_the_broker_is_unreachable_within_seconds(cut_off, root_client):
    url = reverse("control:worker", args=[WORKER])
    page, took = timed(lambda: root_client.get(url, follow=True))

    assert page.status_code == 200
    assert "the broker is unreachable" in page.text
    assert took < FAST


def test_the_api_answers_503_for_a_worker_within_seconds(cut_off):
    api = token_client(make_superuser("api-root"))
    answer, took = timed(lambda: api.get(f"/api/workers/{WORKER}"))

    assert answer.status_code == 503
    assert answer.json()["detail"].startswith("the broker is unreachable")
    assert took < FAST


def test_workers_show_exits_1_with_one_line_within_seconds(cut_off):
    started = time.monotonic()
    with pytest.raises(CommandError, match=r"^the broker is unreachable") as refused:
        call_command("workers", "show", WORKER)

    assert refused.value.returncode == 1
    assert "\n" not in str(refused.value)
    assert time.monotonic() - started < FAST


@pytest.mark.django_db(transaction=True)  # committed at once, as in production: told now
def test_a_pause_is_stored_within_seconds_and_says_the_workers_were_not_told(cut_off, test_queue):
    api = token_client(make_superuser("api-root"))
    answer, took = timed(lambda: api.post(f"/api/queues/{test_queue}/pause"))

    assert answer.status_code == 200
    assert answer.json()["note"].startswith("stored, but the broker is unreachable")
    assert QueuePause.objects.filter(queue=test_queue).exists()
    assert took < FAST


@pytest.mark.django_db(transaction=True)
def test_the_dashboard_and_the_cli_say_a_change_was_stored_but_not_told_to_workers(
    cut_off, test_queue, root_client
):
    url = reverse("control:pause", args=[test_queue])
    page = root_client.post(url, {"next": "/jobs/"}, follow=True)
    assert f"Queue {test_queue} paused" in page.text
    assert "the workers running now were not told" in page.text

    said = io.StringIO()
    call_command("queues", "resume", test_queue, stderr=said)
    assert said.getvalue().startswith("warning: stored, but the broker is unreachable")
    assert not QueuePause.objects.filter(queue=test_queue).exists()


def test_growing_a_pool_says_the_broker_is_unreachable_not_that_the_worker_is_unknown(
    cut_off,
):
    with pytest.raises(CommandError, match=r"^the broker is unreachable") as refused:
        call_command("workers", "grow", WORKER)
    assert refused.value.returncode == 1

    api = token_client(make_superuser("api-root"))
    answer = api.post(f"/api/workers/{WORKER}/grow", {"n": 1}, content_type="application/json")
    assert answer.status_code == 503


def test_once_the_broker_did_not_answer_the_next_door_does_not_wait_again(cut_off, root_client):
    first = inspect.snapshot(refresh=True)
    assert not first.broker_ok

    api = token_client(make_superuser("api-root"))
    answer, took = timed(lambda: api.get(f"/api/workers/{WORKER}"))

    assert answer.status_code == 503
    assert took < inspect.TIMEOUT


def test_cancelling_a_queued_run_answers_within_seconds_and_marks_it_cancelled(cut_off):
    run = make_run(state=State.QUEUED)
    api = token_client(make_superuser("api-root"))

    answer, took = timed(lambda: api.post(f"/api/runs/{run.pk}/cancel"))

    assert answer.status_code == 202
    run.refresh_from_db()
    assert run.state == State.CANCELLED
    assert took < FAST


class CuttableProxy:
    """A TCP proxy to the real broker; after cut() the bytes it gets vanish (a host cut
    off by the network: connections stay open, nothing answers)."""

    def __init__(self, port: int) -> None:
        self.target, self.cut_off, self.sockets = port, threading.Event(), []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client = self.listener.accept()[0]
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            self.sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                if not self.cut_off.is_set():
                    target.sendall(data)
        except OSError:
            return

    def close(self) -> None:
        self.listener.close()
        for one in self.sockets:
            one.close()


@pytest.mark.parametrize("reply", [False, True], ids=["a command", "a question"])
def test_a_broker_cut_off_between_connecting_and_publishing_fails_within_seconds(redis_url, reply):
    """The window a page cannot rule out: the broker answered, then the network went.
    (Before: kombu's Mailbox publishes with unbounded retries, so a command such as a
    pause or a revoke reconnected for ever.)"""
    proxy = CuttableProxy(int(redis_url.rsplit(":", 1)[1].split("/")[0]))
    point_celery_at(f"redis://127.0.0.1:{proxy.port}/0")
    outcome = []

    def ask() -> None:
        try:
            with inspect.connected() as conn:
                proxy.cut_off.set()
                inspect.send(conn, "ping", reply=reply)
        except inspect.BrokerDown as exc:
            outcome.append(exc)

    try:
        asking = threading.Thread(target=ask, daemon=True)
        asking.start()
        asking.join(timeout=FAST)
        assert not asking.is_alive()
        assert isinstance(outcome[0], inspect.BrokerDown)
    finally:
        point_celery_at(redis_url)
        proxy.close()


@pytest.fixture
def cut_after_use(redis_url):
    """The broker answered this process (its pooled connections are open), then the
    network between them went."""
    proxy = CuttableProxy(int(redis_url.rsplit(":", 1)[1].split("/")[0]))
    point_celery_at(f"redis://127.0.0.1:{proxy.port}/0")
    celery_app.control.broadcast("ping")  # an earlier request's: leaves a connection pooled
    proxy.cut_off.set()
    yield
    point_celery_at(redis_url)
    proxy.close()


@pytest.mark.django_db(transaction=True)  # the request runs on a thread of its own
def test_a_pause_after_the_network_went_answers_within_seconds(cut_after_use, test_queue):
    """Before: the broadcast took a pooled connection and kombu reconnected for ever."""
    api = token_client(make_superuser("api-root"))
    answers = []
    asking = threading.Thread(
        target=lambda: answers.append(api.post(f"/api/queues/{test_queue}/pause")), daemon=True
    )
    asking.start()
    asking.join(timeout=FAST)

    assert not asking.is_alive()
    assert answers[0].json()["note"].startswith("stored, but the broker is unreachable")
    assert QueuePause.objects.filter(queue=test_queue).exists()
