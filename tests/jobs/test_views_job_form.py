"""/jobs/<name>/: the typed form; a valid POST starts one web run and shows it."""

import re
import uuid

import pytest

from apps.jobs.catalog import Job
from apps.jobs.forms import job_form_class, job_parameters
from apps.jobs.models import Run, Source
from apps.jobs.params import Param
from tests.helpers import make_superuser, make_user

pytestmark = pytest.mark.django_db

ADD = "apps.demo.tasks.add"
ADD_URL = f"/jobs/{ADD}/"
COUNTDOWN = "apps.demo.tasks.countdown"


@pytest.fixture
def alice(client):
    user = make_user("alice", jobs=(ADD,))
    client.force_login(user)
    return user


def posted_key(response) -> str:
    return re.search(rb'name="idempotency_key" value="([0-9a-f-]+)"', response.content)[1].decode()


def test_the_form_shows_the_typed_fields_and_a_fresh_idempotency_key(client, alice):
    first, second = client.get(ADD_URL), client.get(ADD_URL)
    assert b'name="x"' in first.content and b'type="number"' in first.content
    assert uuid.UUID(posted_key(first)) != uuid.UUID(posted_key(second))


def test_form_errors_name_the_field_and_start_nothing(client, alice):
    response = client.post(ADD_URL, {"x": "four", "y": "", "idempotency_key": uuid.uuid4()})
    assert response.status_code == 200
    assert set(response.context["form"].errors) == {"x", "y"}
    assert b'id="id_x_errors"' in response.content
    assert b"Enter a whole number." in response.content
    assert Run.objects.count() == 0


def test_posting_the_form_starts_a_web_run_by_the_user_and_redirects_to_its_page(client, alice):
    response = client.post(ADD_URL, {"x": "4", "y": "5", "idempotency_key": uuid.uuid4()})
    run = Run.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/runs/{run.pk}/"
    assert (run.job_name, run.parameters) == (ADD, {"x": 4, "y": 5})
    assert (run.source, run.requested_by) == (Source.WEB, alice)


TOTAL_URL = "/jobs/apps.demo.tasks.total/"


def test_a_list_of_integers_posted_one_per_line_is_recorded_as_integers(client):
    client.force_login(make_user("carol", jobs=("apps.demo.tasks.total",)))
    response = client.post(TOTAL_URL, {"numbers": "1\n2\n3", "idempotency_key": uuid.uuid4()})
    assert response.status_code == 302
    assert Run.objects.get().parameters == {"numbers": [1, 2, 3]}


def test_a_bad_item_of_a_list_is_an_error_on_its_field_naming_the_item(client):
    client.force_login(make_user("carol", jobs=("apps.demo.tasks.total",)))
    response = client.post(TOTAL_URL, {"numbers": "1\n2\ntrue", "idempotency_key": uuid.uuid4()})
    assert response.status_code == 200
    assert response.context["form"].errors == {"numbers": ["item 3: Enter a whole number."]}
    assert Run.objects.count() == 0


def test_posting_twice_with_the_same_key_starts_one_run(client, alice):
    data = {"x": "1", "y": "2", "idempotency_key": uuid.uuid4()}
    first, second = client.post(ADD_URL, data), client.post(ADD_URL, data)
    assert first["Location"] == second["Location"]
    assert Run.objects.count() == 1


def test_another_user_posting_the_same_key_starts_their_own_run(client, alice):
    data = {"x": "1", "y": "2", "idempotency_key": uuid.uuid4()}
    first = client.post(ADD_URL, data)
    client.force_login(make_user("bob", jobs=(ADD,)))
    second = client.post(ADD_URL, data)
    assert first["Location"] != second["Location"]
    bobs = Run.objects.get(requested_by__username="bob")
    assert second["Location"] == f"/runs/{bobs.pk}/"


def test_the_same_key_for_another_job_starts_a_run_of_that_job(client):
    client.force_login(make_user("carol", jobs=(ADD, COUNTDOWN)))
    key = uuid.uuid4()
    client.post(ADD_URL, {"x": "1", "y": "2", "idempotency_key": key})
    client.post(f"/jobs/{COUNTDOWN}/", {"seconds": "1", "idempotency_key": key})
    assert sorted(Run.objects.values_list("job_name", flat=True)) == sorted([ADD, COUNTDOWN])


def test_posting_with_new_keys_starts_new_runs(client, alice):
    for _ in range(2):
        client.post(ADD_URL, {"x": "1", "y": "2", "idempotency_key": uuid.uuid4()})
    assert Run.objects.count() == 2


def test_an_unknown_job_is_not_found(client, alice):
    assert client.get("/jobs/apps.demo.tasks.nope/").status_code == 404


def test_a_job_without_permission_is_forbidden_to_see_and_to_post(client):
    client.force_login(make_user("bob", jobs=("apps.demo.tasks.countdown",)))
    assert client.get(ADD_URL).status_code == 403
    assert client.post(ADD_URL, {"x": "1", "y": "2"}).status_code == 403
    assert Run.objects.count() == 0


def test_a_plain_celery_task_outside_the_catalog_has_no_form(client):
    client.force_login(make_superuser())
    assert client.get("/jobs/apps.demo.tasks.mul/").status_code == 404


def test_the_form_needs_a_login(client):
    response = client.get(ADD_URL)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_the_form_refuses_a_post_without_the_csrf_token(alice):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(alice)
    assert strict.post(ADD_URL, {"x": "1", "y": "2"}).status_code == 403
    assert Run.objects.count() == 0


def test_an_unchecked_box_means_false_not_the_default():
    flag = Job(name="tests.flag", title="Flag", description="",
               params=(Param("loud", bool, required=False, default=True),))  # fmt: skip
    form = job_form_class(flag)(data={})
    assert form.is_valid()
    assert job_parameters(flag, form) == {"loud": False}
