"""Control through the JSON API: same actions, the API's auth and error shapes."""

import json

import pytest
from django.contrib.auth.models import Permission

from apps.control import broker
from apps.control.models import ControlAction, QueuePause, RateLimit
from tests.api.helpers import token_client
from tests.helpers import make_superuser, make_user

from .helpers import ADD, send_adds

# Nothing here depends on the database's vendor: the SQLite pass is enough.
pytestmark = [pytest.mark.django_db, pytest.mark.once]


def post(client, url: str, body: dict | None = None, method: str = "post"):
    return getattr(client, method)(url, json.dumps(body or {}), content_type="application/json")


def make_controller(name: str = "carol"):
    user = make_user(name, staff=False)
    user.user_permissions.add(Permission.objects.get(codename="control_queues"))
    return user


def test_a_holder_of_the_permission_pauses_and_resumes_a_queue(test_queue):
    client = token_client(make_controller())

    paused = post(client, f"/api/queues/{test_queue}/pause")

    assert paused.status_code == 200, paused.content
    assert QueuePause.objects.filter(queue=test_queue).exists()
    listed = {q["name"]: q for q in client.get("/api/queues").json()}
    assert listed[test_queue]["paused"] is True
    assert post(client, f"/api/queues/{test_queue}/resume").status_code == 200
    assert not QueuePause.objects.exists()
    actions = ControlAction.objects.order_by("at").values_list("action", "via", "label")
    assert list(actions) == [("pause_queue", "api", "carol"), ("resume_queue", "api", "carol")]


def test_a_user_who_may_run_jobs_but_not_control_gets_403_and_nothing_changes(test_queue):
    client = token_client(make_user("alice", jobs=("apps.demo.tasks.add",)))

    for url, body in [
        (f"/api/queues/{test_queue}/pause", {}),
        (f"/api/queues/{test_queue}/purge", {"confirm": True}),
        ("/api/workers/w@h/grow", {"n": 1}),
        ("/api/workers/w@h/shutdown", {}),
    ]:
        answer = post(client, url, body)
        assert answer.status_code == 403, url
        assert answer.json()["detail"] == "You may not control queues and workers."
    assert post(client, f"/api/jobs/{ADD}/rate-limit", {"rate": "1/m"}, "put").status_code == 403
    assert client.get("/api/workers/w@h").status_code == 403
    assert client.get("/api/queues").status_code == 403
    assert not QueuePause.objects.exists() and not RateLimit.objects.exists()
    assert not ControlAction.objects.exists()


def test_a_jobs_rate_limit_answers_403_to_those_who_may_not_run_the_job_as_the_job_does():
    RateLimit.objects.create(job_name=ADD, rate="5/s")
    client = token_client(make_user("bob", staff=False, jobs=("apps.demo.tasks.countdown",)))
    url = f"/api/jobs/{ADD}/rate-limit"

    assert client.get(f"/api/jobs/{ADD}").status_code == 403
    read = client.get(url)
    assert read.status_code == 403
    assert read.json()["detail"] == "You may not run this job."
    assert "5/s" not in read.text
    assert client.get("/api/jobs/apps.demo.tasks.countdown/rate-limit").status_code == 200


def test_a_controller_who_may_not_run_the_job_may_not_set_its_rate_limit():
    client = token_client(make_controller())
    url = f"/api/jobs/{ADD}/rate-limit"

    for body in ({"rate": "1/m"}, {"rate": None}):
        answer = post(client, url, body, "put")
        assert answer.status_code == 403, body
        assert answer.json()["detail"] == "You may not run this job."
    assert not RateLimit.objects.exists() and not ControlAction.objects.exists()


def test_anonymous_callers_get_401(client, test_queue):
    assert post(client, f"/api/queues/{test_queue}/pause").status_code == 401


def test_unknown_names_answer_404_in_the_apis_shape():
    client = token_client(make_superuser())
    for url in ["/api/queues/nope/pause", "/api/workers/nobody@nowhere/grow"]:
        answer = post(client, url, {"n": 1} if "grow" in url else None)
        assert answer.status_code == 404, url
        assert set(answer.json()) == {"detail", "errors"}
    assert client.get("/api/jobs/no.such.job/rate-limit").status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"rate": "10/d"},
        {"rate": "0/m"},
        {"rate": "x" * 21},
        {"rate": 10},
        {},
        {"rate": "1/m", "x": 1},
    ],
)
def test_a_bad_rate_limit_answers_422_naming_the_field(body):
    answer = post(token_client(make_superuser()), f"/api/jobs/{ADD}/rate-limit", body, "put")
    assert answer.status_code == 422, answer.content
    assert answer.json()["errors"]
    assert not RateLimit.objects.exists()


def test_a_rate_limit_is_set_per_worker_and_cleared_with_null():
    client = token_client(make_superuser())
    url = f"/api/jobs/{ADD}/rate-limit"

    answer = post(client, url, {"rate": "10/m"}, "put").json()

    assert (answer["rate"], answer["stored"]) == ("10/m", True)
    assert "each worker separately" in answer["note"]
    assert answer["effective_total"].endswith(("/m", "no worker consumes the queue"))
    assert RateLimit.objects.get(job_name=ADD).rate == "10/m"
    cleared = post(client, url, {"rate": None}, "put").json()
    assert (cleared["rate"], cleared["stored"]) == (None, False)
    assert not RateLimit.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_purge_needs_confirm_true_then_drops_and_reports_the_count(test_queue):
    client = token_client(make_superuser())
    send_adds(test_queue, 2)
    url = f"/api/queues/{test_queue}/purge"

    assert post(client, url, {}).status_code == 422
    assert post(client, url, {"confirm": False}).status_code == 422
    assert broker.waiting(test_queue) == 2
    answer = post(client, url, {"confirm": True})

    assert answer.status_code == 200
    assert answer.json() == {"queue": test_queue, "dropped": 2, "cancelled": 2}


@pytest.mark.parametrize("body", [{"n": 0}, {"n": 65}, {"n": "many"}, {"n": 2**64}])
def test_a_bad_pool_step_answers_422(body):
    answer = post(token_client(make_superuser()), "/api/workers/w@h/grow", body)
    assert answer.status_code == 422


def test_a_signed_in_user_without_the_permission_cannot_list_the_queues(test_queue):
    client = token_client(make_user("bob", staff=False))

    answer = client.get("/api/queues")

    assert answer.status_code == 403
    assert answer.json()["detail"] == "You may not control queues and workers."
    assert test_queue not in answer.text


@pytest.mark.parametrize("n", ["\u0663", "\uff13", "1_0"])  # Arabic-Indic 3, fullwidth 3
def test_a_pool_step_in_digits_other_than_0_to_9_is_422_naming_n(n):
    client = token_client(make_superuser())

    for url, body in [("/api/workers/w@h/grow", {"n": n}),
                      ("/api/workers/w@h/autoscale", {"max": n, "min": 1})]:  # fmt: skip
        answer = post(client, url, body)
        assert answer.status_code == 422, answer.content
        assert "is not a whole number (digits 0-9)" in answer.text
    assert not ControlAction.objects.exists()
