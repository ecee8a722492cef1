"""A queue name no queue could have (a control character such as NUL, or too long) is
refused like an unknown queue at every door, before the database is asked: PostgreSQL
cannot even compare text holding NUL."""

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.control.models import ControlAction, QueuePause
from tests.api.helpers import token_client
from tests.helpers import make_superuser

pytestmark = pytest.mark.django_db

IMPOSSIBLE = ["a\x00b", "a\x1bb", "q" * 201]
IN_URLS = ["a%00b", "a%1Bb", "q" * 201]


@pytest.mark.parametrize("queue", IN_URLS)
def test_the_web_pages_refuse_an_impossible_queue_name_like_an_unknown_queue(root_client, queue):
    for action in ("pause", "resume"):
        answer = root_client.post(f"/control/queues/{queue}/{action}", follow=True)
        assert answer.status_code == 200
        assert "unknown queue" in answer.text

    assert root_client.get(f"/control/queues/{queue}/purge").status_code == 404
    assert not QueuePause.objects.exists() and not ControlAction.objects.exists()


@pytest.mark.parametrize("queue", IN_URLS)
def test_the_api_refuses_an_impossible_queue_name(queue):
    client = token_client(make_superuser())

    for action, body in [("pause", {}), ("resume", {}), ("purge", {"confirm": True})]:
        answer = client.post(
            f"/api/queues/{queue}/{action}", json.dumps(body), content_type="application/json"
        )
        assert answer.status_code in (404, 422), answer.content

    assert not QueuePause.objects.exists() and not ControlAction.objects.exists()


@pytest.mark.parametrize("queue", IMPOSSIBLE)
def test_the_shell_refuses_an_impossible_queue_name_with_status_2(queue):
    for args in [("pause", queue), ("resume", queue), ("purge", queue, "--yes")]:
        with pytest.raises(CommandError) as error:
            call_command("queues", *args)
        assert error.value.returncode == 2
        assert str(error.value).startswith("unknown queue")

    assert not QueuePause.objects.exists() and not ControlAction.objects.exists()
