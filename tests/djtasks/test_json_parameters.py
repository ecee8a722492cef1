"""A parameter that takes JSON (`tally(counts: dict)`) holds only what a run record can
store: NaN, 1e309, a lone surrogate or nesting too deep is refused at every door (the
API, the web form, `manage.py jobs run`), naming the parameter, and nothing is recorded.
Before, each reached the run's INSERT and failed there: a 500 or a traceback."""

import json
import uuid

import pytest

from apps.demo.tasks_api.tasks import tally
from apps.jobs.models import Run
from tests.api.helpers import token_client
from tests.helpers import make_user
from tests.jobs.test_cli import jobs

pytestmark = pytest.mark.django_db

TALLY = tally.module_path
DEEP = "[" * 3000 + "]" * 3000
# JSON text as typed (in a form, on a command line, in a file).
NOT_STORABLE = {
    "too large a number": '{"a": 1e309}',
    "a negative one": '{"a": -1e309}',
    "NaN": "NaN",
    "Infinity in an object": '{"a": Infinity}',
    "a lone surrogate": '{"a": "\\ud800"}',
    "a lone surrogate as a key": '{"\\udfff": 1}',
    "NUL, which PostgreSQL cannot store": '{"a": "\\u0000"}',
    "nesting past the interpreter's limit": DEEP,
    "nesting past 100 levels": "[" * 101 + "]" * 101,
}


@pytest.fixture
def alice(client):
    user = make_user("alice", jobs=(TALLY,))
    client.force_login(user)
    return user


def post_json(client, url: str, body: str):
    return client.post(url, body, content_type="application/json")


# The API ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["1e309", "-1e309", "1.5e400", '{"a": 1e309}', "[[1e999]]", "[" * 120 + "]" * 120],
    ids=str.__len__,
)
def test_the_api_answers_422_naming_the_parameter_for_a_number_too_large_or_deep_nesting(
    alice, value
):  # fmt: skip
    body = '{"parameters": {"counts": VALUE}}'.replace("VALUE", value)
    response = post_json(token_client(alice), f"/api/jobs/{TALLY}/runs", body)
    assert response.status_code == 422, response.content
    assert list(response.json()["errors"]) == ["counts"]
    assert not Run.objects.exists()


def test_the_api_answers_422_for_nul_in_a_json_parameter(alice):
    body = json.dumps({"parameters": {"counts": {"a": "\x00"}}})
    response = post_json(token_client(alice), f"/api/jobs/{TALLY}/runs", body)
    assert response.status_code == 422
    assert list(response.json()["errors"]) == ["counts"]
    assert not Run.objects.exists()


def test_the_bulk_api_names_the_item_and_records_none(alice):
    body = '{"items": [{"counts": {"a": 1}}, {"counts": {"a": 1e309}}]}'
    response = post_json(token_client(alice), f"/api/jobs/{TALLY}/runs/bulk", body)
    assert response.status_code == 422, response.content
    assert list(response.json()["errors"]) == ["items[1].counts"]
    assert not Run.objects.exists()


def test_a_json_parameter_with_plain_large_finite_numbers_is_still_accepted(alice):
    body = '{"parameters": {"counts": {"a": 1e308, "b": -1.5e-300, "c": 12345678901234567890}}}'
    response = post_json(token_client(alice), f"/api/jobs/{TALLY}/runs", body)
    assert response.status_code == 201, response.content
    assert float(Run.objects.get().parameters["counts"]["a"]) == 1e308  # jsonb: an int


# The web form -------------------------------------------------------------------------


@pytest.mark.parametrize("text", NOT_STORABLE.values(), ids=NOT_STORABLE.keys())
def test_the_web_form_shows_an_error_on_the_field_and_starts_nothing(client, alice, text):
    response = client.post(f"/jobs/{TALLY}/", {"counts": text, "idempotency_key": uuid.uuid4()})
    assert response.status_code == 200
    assert list(response.context["form"].errors) == ["counts"]
    assert not Run.objects.exists()


def test_the_web_form_shows_again_the_text_it_refused(client, alice):
    response = client.post(f"/jobs/{TALLY}/", {"counts": '{"a": "\\ud800"}'})
    assert response.status_code == 200
    assert "lone surrogate" in response.content.decode()
    assert "{&quot;a&quot;: &quot;\\ud800&quot;}" in response.content.decode()


def test_the_web_form_still_starts_a_run_with_good_json(client, alice):
    response = client.post(f"/jobs/{TALLY}/", {"counts": '{"a": 1, "b": "\\u00e9"}'})
    assert response.status_code == 302
    assert Run.objects.get().parameters == {"counts": {"a": 1, "b": "é"}, "extra": None}


# The CLI ------------------------------------------------------------------------------


@pytest.mark.parametrize("text", NOT_STORABLE.values(), ids=NOT_STORABLE.keys())
def test_jobs_run_exits_2_naming_the_parameter(text):
    code, _, error = jobs("run", TALLY, f"counts={text}")
    assert code == 2
    assert error.startswith("counts: ")
    assert not Run.objects.exists()


@pytest.mark.parametrize("line", ['{"counts": {"a": 1e309}}', '{"counts": {"a": NaN}}'])
def test_jobs_run_many_exits_2_naming_the_item(tmp_path, line):
    sets = tmp_path / "sets.jsonl"
    sets.write_text('{"counts": {"a": 1}}\n' + line + "\n")
    code, _, error = jobs("run", TALLY, "--many", str(sets))
    assert code == 2
    assert error.startswith("items[1].counts: ")
    assert not Run.objects.exists()


def test_jobs_run_many_exits_2_for_a_file_nested_too_deep(tmp_path):
    sets = tmp_path / "sets.json"
    sets.write_text('{"counts": ' + DEEP + "}")
    code, _, error = jobs("run", TALLY, "--many", str(sets))
    assert code == 2
    assert error.startswith("line 1: ")
    assert not Run.objects.exists()


# The Tasks API in code ----------------------------------------------------------------


@pytest.mark.parametrize("counts", [{"a": float("inf")}, {"a": float("nan")}, {"a": "\ud800"}])
def test_enqueue_refuses_a_value_no_run_record_can_store(counts):
    with pytest.raises(ValueError):
        tally.enqueue(counts)
    assert not Run.objects.exists()
