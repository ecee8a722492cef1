"""Control from the web pages: the dashboard, a worker's page, a job's page."""

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from apps.control.models import ControlAction, QueuePause, RateLimit
from tests.helpers import make_user

from .helpers import ADD

# Nothing here depends on the database's vendor: the SQLite pass is enough.
pytestmark = [pytest.mark.django_db, pytest.mark.once]


def test_the_dashboard_shows_a_paused_queue_plainly_with_resume(root_client, test_queue):
    QueuePause.objects.create(queue=test_queue)

    part = root_client.get(reverse("ops:part", args=["queues"])).text

    row = part.split(f"<td>{test_queue}</td>")[1].split("</tr>")[0]
    assert "paused" in row and "messages wait" in row
    assert reverse("control:resume", args=[test_queue]) in row
    assert reverse("control:purge", args=[test_queue]) in row


def test_pause_from_the_dashboard_is_stored_recorded_and_said(root_client, test_queue):
    url = reverse("control:pause", args=[test_queue])
    answer = root_client.post(url, {"next": "/jobs/"}, follow=True)

    assert f"Queue {test_queue} paused" in answer.text
    assert QueuePause.objects.filter(queue=test_queue).exists()
    row = ControlAction.objects.get()
    assert (row.action, row.via, row.user.username) == ("pause_queue", "web", "root")


def test_staff_without_the_permission_see_no_controls_and_get_403(client, test_queue):
    client.force_login(make_user("alice", staff=True))

    part = client.get(reverse("ops:part", args=["queues"])).text

    assert test_queue in part and "Pause" not in part
    for url in [
        reverse("control:pause", args=[test_queue]),
        reverse("control:purge", args=[test_queue]),
        reverse("control:worker-action", args=["w@h", "grow"]),
        reverse("control:rate-limit", args=[ADD]),
    ]:
        assert client.post(url, {"confirm": "yes", "rate": "1/m"}).status_code == 403, url
    assert client.get(reverse("control:worker", args=["w@h"])).status_code == 403
    assert not QueuePause.objects.exists() and not RateLimit.objects.exists()


def test_the_job_page_says_the_limit_is_per_worker_and_sets_it(client):
    user = make_user("carol", staff=False, jobs=(ADD,))
    user.user_permissions.add(Permission.objects.get(codename="control_queues"))
    client.force_login(user)
    page = reverse("jobs:job", args=[ADD])

    answer = client.post(reverse("control:rate-limit", args=[ADD]), {"rate": "10/m"}, follow=True)

    assert answer.request["PATH_INFO"] == page
    assert RateLimit.objects.get(job_name=ADD).rate == "10/m"
    assert "<strong>10/m</strong> per worker" in answer.text
    assert "each worker separately" in answer.text
    total = client.get(reverse("control:rate-total", args=[ADD])).text
    assert "0 workers consuming celery" in total
    assert 'effective total now: <strong class="effective-total">none: no worker' in total


def test_a_bad_rate_on_the_job_page_is_refused_naming_the_field(root_client):
    url = reverse("control:rate-limit", args=[ADD])

    answer = root_client.post(url, {"rate": "10 per minute"}, follow=True)

    assert "rate: &#x27;10 per minute&#x27; is not a rate limit" in answer.text
    assert not RateLimit.objects.exists()


def test_who_may_run_the_job_but_not_control_sees_the_limit_without_the_form(client):
    RateLimit.objects.create(job_name=ADD, rate="5/s")
    client.force_login(make_user("alice", staff=False, jobs=(ADD,)))

    page = client.get(reverse("jobs:job", args=[ADD])).text

    assert "<strong>5/s</strong> per worker" in page
    assert reverse("control:rate-limit", args=[ADD]) not in page


def test_who_may_not_run_the_job_gets_403_for_its_rate_total_as_for_its_page(client):
    RateLimit.objects.create(job_name=ADD, rate="5/s")
    client.force_login(make_user("bob", staff=True, jobs=("apps.demo.tasks.countdown",)))

    assert client.get(reverse("jobs:job", args=[ADD])).status_code == 403
    answer = client.get(reverse("control:rate-total", args=[ADD]))
    assert answer.status_code == 403 and "5/s" not in answer.text
    assert client.get(reverse("control:rate-total", args=["no.such.job"])).status_code == 404


def test_a_controller_who_may_not_run_the_job_may_not_set_its_rate_limit(client):
    user = make_user("carol", staff=False)
    user.user_permissions.add(Permission.objects.get(codename="control_queues"))
    client.force_login(user)

    for form in ({"rate": "1/m"}, {"clear": "1"}):
        assert client.post(reverse("control:rate-limit", args=[ADD]), form).status_code == 403
    assert not RateLimit.objects.exists() and not ControlAction.objects.exists()


@pytest.mark.parametrize("n", ["0", "many", pytest.param("9" * 5000, id="5000 digits")])
def test_a_bad_pool_step_from_the_page_is_refused_with_a_message(root_client, n):
    url = reverse("control:worker-action", args=["w@h", "grow"])
    answer = root_client.post(url, {"n": n, "next": "/jobs/"}, follow=True)
    assert "n: " in answer.text
    assert not ControlAction.objects.exists()


def test_a_worker_that_does_not_answer_has_no_page(root_client):
    assert root_client.get(reverse("control:worker", args=["nobody@nowhere"])).status_code == 404


def test_the_admin_lists_what_was_done_read_only(root_client, test_queue):
    root_client.post(reverse("control:pause", args=[test_queue]), {"next": "/jobs/"})

    listing = root_client.get(reverse("admin:control_controlaction_changelist"))

    assert listing.status_code == 200
    assert "pause_queue" in listing.text and test_queue in listing.text
    row = ControlAction.objects.get()
    assert root_client.post(reverse("admin:control_controlaction_delete", args=[row.pk]),
                            {"post": "yes"}).status_code == 403  # fmt: skip
    assert ControlAction.objects.exists()


@pytest.mark.parametrize("n", ["\u0663", "\uff13", "1_0"])  # Arabic-Indic 3, fullwidth 3
def test_a_pool_step_in_digits_other_than_0_to_9_is_refused_with_a_message(root_client, n):
    url = reverse("control:worker-action", args=["w@h", "grow"])
    answer = root_client.post(url, {"n": n, "next": "/jobs/"}, follow=True)
    assert "is not a whole number (digits 0-9)" in answer.text
    assert not ControlAction.objects.exists()
