"""Control while the broker is down: a clear refusal, never a traceback or a 500."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from apps.control.models import ControlAction, QueuePause
from apps.devstack import processes
from tests.api.helpers import token_client
from tests.helpers import make_superuser, point_celery_at

pytestmark = [pytest.mark.django_db, pytest.mark.once]


@pytest.fixture
def broker_down(redis_url):
    point_celery_at(f"redis://127.0.0.1:{processes.free_port()}/0")
    yield
    point_celery_at(redis_url)


def test_purge_says_the_broker_is_unreachable(broker_down, test_queue, root_client):
    with pytest.raises(CommandError, match="broker is unreachable") as refused:
        call_command("queues", "purge", test_queue, "--yes")
    assert refused.value.returncode == 1
    with pytest.raises(CommandError, match="broker is unreachable"):
        call_command("queues", "purge", test_queue)

    url = reverse("control:purge", args=[test_queue])
    answer = root_client.post(url, {"confirm": "yes", "next": "/jobs/"}, follow=True)
    assert "broker is unreachable" in answer.text
    api = token_client(make_superuser("api-root"))
    answer = api.post(f"/api/queues/{test_queue}/purge", {"confirm": True},
                      content_type="application/json")  # fmt: skip
    assert answer.status_code == 503
    assert "broker is unreachable" in answer.json()["detail"]
    assert not ControlAction.objects.exists()


def test_a_pause_is_stored_while_the_broker_is_down_and_workers_read_it_at_start(
    broker_down, test_queue
):
    call_command("queues", "pause", test_queue)
    assert QueuePause.objects.filter(queue=test_queue).exists()
