"""/accounts/login/ and /accounts/logout/: the site's sign-in, for any active user.

bob is not staff and may run `add` only: the admin's login refuses him, this page lets
him in. Every POST here carries its CSRF token, as a browser's would.
"""

import re

import pytest
from django.test import Client

from apps.jobs.models import Run
from tests.api.helpers import ADD
from tests.helpers import make_user

pytestmark = pytest.mark.django_db

ADD_URL = f"/jobs/{ADD}/"
LOGIN_URL = "/accounts/login/"


@pytest.fixture
def bob():
    return make_user("bob", staff=False, jobs=(ADD,))  # password "pw"


@pytest.fixture
def visitor() -> Client:
    return Client(enforce_csrf_checks=True)


def csrf(client: Client) -> str:
    return client.cookies["csrftoken"].value


def sign_in(client: Client, password: str = "pw", next_url: str = "", username: str = "bob"):
    client.get(LOGIN_URL, {"next": next_url} if next_url else {})
    data = {"username": username, "password": password, "csrfmiddlewaretoken": csrf(client)}
    return client.post(LOGIN_URL, {**data, "next": next_url} if next_url else data)


def test_a_user_who_is_not_staff_signs_in_lands_on_next_and_runs_their_job(bob, visitor):
    asked = visitor.get(ADD_URL)
    assert asked["Location"] == f"{LOGIN_URL}?next={ADD_URL}"
    page = visitor.get(asked["Location"])
    assert f'name="next" value="{ADD_URL}"' in page.content.decode()

    signed_in = sign_in(visitor, next_url=ADD_URL)
    assert signed_in.status_code == 302 and signed_in["Location"] == ADD_URL

    form = visitor.get(ADD_URL)
    key = re.search(r'name="idempotency_key" value="([0-9a-f-]+)"', form.content.decode())[1]
    started = visitor.post(ADD_URL, {"x": "4", "y": "5", "idempotency_key": key,
                                     "csrfmiddlewaretoken": csrf(visitor)})  # fmt: skip
    run = Run.objects.get()
    assert started["Location"] == f"/runs/{run.pk}/"
    assert (run.job_name, run.requested_by) == (ADD, bob)


def test_signing_in_to_the_site_does_not_open_the_admin(bob, visitor):
    sign_in(visitor)
    response = visitor.get("/admin/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


def test_with_no_next_the_user_lands_on_the_job_catalog(bob, visitor):
    assert sign_in(visitor)["Location"] == "/jobs/"


def test_a_wrong_password_shows_the_form_error_and_signs_nobody_in(bob, visitor):
    response = sign_in(visitor, password="not the password")
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()
    assert "_auth_user_id" not in visitor.session


def test_an_inactive_user_cannot_sign_in(visitor):
    make_user("carol", staff=False, is_active=False)
    response = sign_in(visitor, username="carol")
    assert response.status_code == 200 and "_auth_user_id" not in visitor.session


def test_a_next_pointing_at_another_site_is_not_followed(bob, visitor):
    response = sign_in(visitor, next_url="https://evil.example/")
    assert response.status_code == 302 and response["Location"] == "/jobs/"
    page = visitor.get(f"{LOGIN_URL}?next=https://evil.example/")
    assert "evil.example" not in page.content.decode()


def test_the_header_says_who_is_signed_in_with_a_sign_out_button(bob, visitor):
    sign_in(visitor)
    page = visitor.get("/jobs/").content.decode()
    assert "Signed in as bob" in page
    assert '<form class="logout" method="post" action="/accounts/logout/">' in page
    assert 'href="/admin/"' not in page  # the staff-only links are not offered to bob


def test_signing_out_by_post_ends_the_session(bob, visitor):
    sign_in(visitor)
    assert visitor.get("/accounts/logout/").status_code == 405  # a link cannot sign you out
    assert visitor.get("/jobs/").status_code == 200
    response = visitor.post("/accounts/logout/", {"csrfmiddlewaretoken": csrf(visitor)})
    assert response.status_code == 302 and response["Location"] == LOGIN_URL
    assert "_auth_user_id" not in visitor.session
    assert visitor.get("/jobs/")["Location"] == f"{LOGIN_URL}?next=/jobs/"


def test_signing_in_without_the_csrf_token_is_refused(bob, visitor):
    response = visitor.post(LOGIN_URL, {"username": "bob", "password": "pw"})
    assert response.status_code == 403 and "_auth_user_id" not in visitor.session
