"""API tokens: stored hashed, revocable, never shown again. tests/api covers the basics;
these close the gaps: the admin's history and log, every stored column, the logs, and
a revocation taking effect on the very next request."""

import logging

import pytest
from django.contrib.admin.models import LogEntry
from django.test import Client

from apps.api.models import ApiToken
from tests.helpers import make_superuser, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def root_client() -> Client:
    client = Client()
    client.force_login(make_superuser())
    return client


def create_in_admin(client: Client, user) -> tuple[ApiToken, str]:
    response = client.post("/admin/api/apitoken/add/", {"user": user.pk, "name": "nightly"})
    return ApiToken.objects.get(), response.context["token"]


def test_the_token_appears_nowhere_after_the_page_that_shows_it(root_client, caplog):
    caplog.set_level(logging.DEBUG)
    api_token, token = create_in_admin(root_client, make_user("alice"))
    pages = [f"/admin/api/apitoken/{api_token.pk}/change/",
             f"/admin/api/apitoken/{api_token.pk}/history/",
             "/admin/api/apitoken/", "/admin/", "/api/openapi.json"]  # fmt: skip
    for page in pages:
        assert token not in root_client.get(page).content.decode(), page
    stored = [str(value) for value in ApiToken.objects.values().get().values()]
    assert not any(token in value or token[8:] in value for value in stored)
    assert not any(token in entry.change_message + entry.object_repr
                   for entry in LogEntry.objects.all())  # fmt: skip
    assert token not in caplog.text


def test_a_token_revoked_in_the_admin_is_refused_on_the_next_request(root_client):
    api_token, token = create_in_admin(root_client, make_user("alice"))
    script = Client(headers={"Authorization": f"Bearer {token}"})
    assert script.get("/api/runs").status_code == 200
    root_client.post("/admin/api/apitoken/", {"action": "revoke",
                                              "_selected_action": [api_token.pk]})  # fmt: skip
    assert script.get("/api/runs").status_code == 401


def test_a_revoked_token_cannot_be_brought_back_by_editing_it(root_client):
    api_token, token = create_in_admin(root_client, make_user("alice"))
    ApiToken.objects.filter(pk=api_token.pk).revoke()
    root_client.post(f"/admin/api/apitoken/{api_token.pk}/change/",
                     {"name": "renamed", "revoked_at": ""})  # fmt: skip
    api_token.refresh_from_db()
    assert api_token.revoked_at is not None
    assert Client(headers={"Authorization": f"Bearer {token}"}).get("/api/runs").status_code == 401
