"""Who may call the API: bearer tokens for scripts, the session (with CSRF) for browsers."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.api.models import ApiToken
from apps.jobs.models import Run
from apps.jobs.permissions import may_run
from tests.api.helpers import ADD, make_token
from tests.helpers import make_user

pytestmark = pytest.mark.django_db


def bearer(token: str) -> Client:
    return Client(headers={"Authorization": f"Bearer {token}"})


def test_a_token_authenticates_its_user():
    alice = make_user("alice", jobs=(ADD,))
    response = bearer(make_token(alice)).get("/api/jobs")
    assert response.status_code == 200
    assert [job["name"] for job in response.json()] == [ADD]


def test_the_token_is_stored_only_as_a_hash():
    alice = make_user("alice")
    token = make_token(alice)
    row = ApiToken.objects.values().get()
    assert not any(token in str(value) for value in row.values())
    assert row["prefix"] == token[:8]
    assert len(row["hashed_secret"]) == 64


def test_using_a_token_records_when_it_was_last_used():
    token = make_token(make_user("alice"))
    bearer(token).get("/api/jobs")
    assert ApiToken.objects.get().last_used_at is not None


def test_a_token_used_again_within_a_minute_costs_no_write():
    client = bearer(make_token(make_user("alice")))
    client.get("/api/jobs")
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/api/jobs").status_code == 200
    assert [q["sql"] for q in queries.captured_queries if "UPDATE" in q["sql"]] == []


def test_a_token_last_used_over_a_minute_ago_is_stamped_again():
    token = make_token(make_user("alice"))
    long_ago = timezone.now() - timedelta(minutes=5)
    ApiToken.objects.update(last_used_at=long_ago)
    bearer(token).get("/api/jobs")
    assert ApiToken.objects.get().last_used_at > long_ago


def test_a_revoked_token_gets_401():
    token = make_token(make_user("alice"))
    ApiToken.objects.all().revoke()
    response = bearer(token).get("/api/jobs")
    assert response.status_code == 401
    assert response.json()["detail"]


def test_a_wrong_or_malformed_token_gets_401():
    token = make_token(make_user("alice"))
    for wrong in [token[:-1] + ("A" if token[-1] != "A" else "B"), "x", "\x00" * 43, ""]:
        assert bearer(wrong).get("/api/jobs").status_code == 401, wrong


def test_a_token_of_a_deactivated_user_gets_401():
    alice = make_user("alice", jobs=(ADD,))
    token = make_token(alice)
    alice.is_active = False
    alice.save()
    assert bearer(token).get("/api/jobs").status_code == 401


def test_anonymous_callers_get_a_json_401_not_a_login_redirect():
    for method, url in [
        ("get", "/api/jobs"),
        ("get", f"/api/jobs/{ADD}"),
        ("post", f"/api/jobs/{ADD}/runs"),
        ("get", "/api/runs"),
        ("get", "/api/runs/1"),
        ("post", "/api/runs/1/cancel"),
        ("post", "/api/runs/1/retry"),
        ("get", "/api/openapi.json"),
        ("get", "/api/"),
        ("get", "/api/nowhere"),
    ]:
        response = getattr(Client(), method)(url)
        assert response.status_code == 401, url
        assert response["Content-Type"] == "application/json", url
        assert response["WWW-Authenticate"].startswith("Bearer"), url
        assert "detail" in response.json()


def test_a_logged_in_browser_can_read_with_its_session():
    alice = make_user("alice", jobs=(ADD,))
    client = Client()
    client.force_login(alice)
    assert client.get("/api/jobs").status_code == 200


def test_a_session_post_without_the_csrf_token_is_refused():
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user("alice", jobs=(ADD,)))
    response = client.post(
        f"/api/jobs/{ADD}/runs", {"parameters": {"x": 1, "y": 2}}, content_type="application/json"
    )
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    assert not Run.objects.exists()


def test_a_session_post_with_the_csrf_token_starts_a_run():
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user("alice", jobs=(ADD,)))
    csrf = "k" * 32  # what a page's csrftoken cookie holds
    client.cookies["csrftoken"] = csrf
    response = client.post(
        f"/api/jobs/{ADD}/runs",
        {"parameters": {"x": 1, "y": 2}},
        content_type="application/json",
        headers={"X-CSRFToken": csrf},
    )
    assert response.status_code == 201
    assert Run.objects.get().source == "api"


def test_a_token_post_needs_no_csrf_token():
    client = Client(
        enforce_csrf_checks=True,
        headers={"Authorization": f"Bearer {make_token(make_user('alice', jobs=(ADD,)))}"},
    )
    response = client.post(
        f"/api/jobs/{ADD}/runs", {"parameters": {"x": 1, "y": 2}}, content_type="application/json"
    )
    assert response.status_code == 201


def test_the_openapi_document_is_served_to_token_holders():
    response = bearer(make_token(make_user("alice"))).get("/api/openapi.json")
    assert response.status_code == 200
    assert response.json()["openapi"].startswith("3.")


def test_revoking_twice_keeps_the_first_revocation_time():
    make_token(make_user("alice"))
    assert ApiToken.objects.all().revoke() == 1
    first = ApiToken.objects.get().revoked_at
    assert ApiToken.objects.all().revoke() == 0
    assert ApiToken.objects.get().revoked_at == first <= timezone.now()


def test_a_tokens_user_is_the_whole_user_its_other_fields_read_when_asked():
    alice = make_user("alice", jobs=(ADD,))
    alice.email, alice.first_name = "alice@example.com", "Alice"
    alice.save()

    user = ApiToken.user_for(make_token(alice))

    assert (user.pk, user.username, user.is_active, user.is_superuser) == (
        alice.pk, "alice", True, False
    )  # fmt: skip
    assert (user.email, user.first_name) == ("alice@example.com", "Alice")
    assert may_run(user, ADD) and not may_run(user, "apps.demo.tasks.countdown")
