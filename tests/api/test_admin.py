"""Tokens are created in the admin, shown once, listed by prefix and revoked by an action."""

import pytest
from django.test import Client

from apps.api.models import ApiToken, digest
from tests.api.helpers import make_token
from tests.helpers import make_superuser, make_user

pytestmark = pytest.mark.django_db


def admin_client(user=None) -> Client:
    client = Client()
    client.force_login(user or make_superuser())
    return client


def test_creating_a_token_shows_it_once_and_stores_only_its_hash():
    client = admin_client()
    alice = make_user("alice")
    response = client.post("/admin/api/apitoken/add/", {"user": alice.pk, "name": "export"})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    api_token = ApiToken.objects.get()
    token = response.context["token"]
    assert token in response.content.decode()
    assert api_token.hashed_secret == digest(token) and api_token.user == alice
    change_page = client.get(f"/admin/api/apitoken/{api_token.pk}/change/").content.decode()
    list_page = client.get("/admin/api/apitoken/").content.decode()
    assert token not in change_page and token not in list_page
    assert api_token.prefix in list_page


def test_the_revoke_action_revokes_the_selected_tokens():
    make_token(make_user("alice"))
    api_token = ApiToken.objects.get()
    response = admin_client().post(
        "/admin/api/apitoken/",
        {"action": "revoke", "_selected_action": [api_token.pk]},
        follow=True,
    )
    assert "1 token revoked." in response.content.decode()
    api_token.refresh_from_db()
    assert api_token.revoked_at is not None


def test_a_staff_user_may_only_mint_tokens_for_themselves():
    bob = make_user("bob")
    bob.user_permissions.add(*_token_permissions())
    root = make_superuser()
    client = admin_client(bob)
    response = client.post("/admin/api/apitoken/add/", {"user": root.pk, "name": "escalate"})
    assert response.status_code == 200
    assert not ApiToken.objects.exists()
    client.post("/admin/api/apitoken/add/", {"user": bob.pk, "name": "mine"})
    assert ApiToken.objects.get().user == bob


def test_a_staff_user_sees_only_their_own_tokens():
    make_token(make_superuser(), name="root's")
    bob = make_user("bob")
    bob.user_permissions.add(*_token_permissions())
    make_token(bob, name="bob's")
    page = admin_client(bob).get("/admin/api/apitoken/").content.decode()
    assert "bob&#x27;s" in page and "root&#x27;s" not in page


def _token_permissions():
    from django.contrib.auth.models import Permission

    return Permission.objects.filter(content_type__app_label="api")
