"""Finding runs: parameter search and combined filters, on /runs/, the API and the CLI."""

import datetime as dt

import pytest
from django.contrib.auth import get_user_model

from apps.jobs.models import Source, State
from tests.api.helpers import token_client
from tests.helpers import make_run, make_superuser
from tests.jobs.test_cli import jobs

pytestmark = pytest.mark.django_db

ADD = "apps.demo.tasks.add"


def shown(response) -> set[int]:
    return {run.pk for run in response.context["page"].runs}


def api_ids(response) -> set[int]:
    assert response.status_code == 200, response.content
    return {item["id"] for item in response.json()["items"]}


def cli_ids(*args: str) -> set[int]:
    code, out, err = jobs("runs", *args)
    assert code == 0, err
    return {int(line.split()[0]) for line in out.splitlines() if line.strip()}


@pytest.fixture
def customers():
    return {
        "int 42": make_run(parameters={"customer_id": 42, "email": "ann@example.com"}),
        "str 42": make_run(parameters={"customer_id": "42", "email": "bob@EXAMPLE.com"}),
        "int 43": make_run(parameters={"customer_id": 43, "email": "cy@other.org"}),
        "none": make_run(parameters={"x": 1}),
        "bool": make_run(parameters={"customer_id": True, "flag": True}),
    }


def by_name(customers, ids: set[int]) -> set[str]:
    return {name for name, run in customers.items() if run.pk in ids}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"param.customer_id": "42"}, {"int 42", "str 42"}),
        ({"param.customer_id": "43"}, {"int 43"}),
        ({"param.customer_id": "true"}, {"bool"}),
        ({"param.email~": "@example.com"}, {"int 42", "str 42"}),
        ({"param": "email~@example.com"}, {"int 42", "str 42"}),
        ({"param": "customer_id=42", "param.email~": "ann"}, {"int 42"}),
        ({"param.missing": "42"}, set()),
    ],
)
def test_runs_are_found_by_their_parameter_values_on_the_page(client, customers, query,
                                                              expected):  # fmt: skip
    client.force_login(make_superuser())
    assert by_name(customers, shown(client.get("/runs/", query))) == expected


def test_a_substring_condition_can_be_written_without_an_equals_sign(client, customers):
    client.force_login(make_superuser())
    response = client.get("/runs/?param.email~@example.com")
    assert by_name(customers, shown(response)) == {"int 42", "str 42"}


def test_the_api_and_the_cli_find_the_same_runs_as_the_page(customers):
    api = token_client(make_superuser())
    found = api_ids(api.get("/api/runs", {"param.customer_id": "42"}))
    assert by_name(customers, found) == {"int 42", "str 42"}
    assert cli_ids("--param", "customer_id=42") == found
    assert by_name(customers, cli_ids("--param", "email~other.org")) == {"int 43"}


@pytest.mark.parametrize(
    ("query", "token", "message"),
    [
        ({"param.customer_id>": "4"}, "customer_id>=4", "unknown operator"),
        ({"param.customer_id": "4\x07"}, "customer_id=4\x07", "control character"),
        ({"param.email~": "x" * 201}, "email~" + "x" * 201, "at most 200 characters"),
        ({"param.1abc": "x"}, "customer_id", "parameter name"),
        ({"param": "customer_id"}, "customer_id", "unknown operator"),
    ],
)
def test_a_bad_parameter_condition_is_refused_at_every_door(client, query, token, message):
    make_run(parameters={"customer_id": 4})
    user = make_superuser()
    client.force_login(user)
    page = client.get("/runs/", query)
    assert page.status_code == 400
    assert message in page.content.decode()
    assert shown(page) == set()

    api = token_client(user).get("/api/runs", query)
    assert api.status_code == 422
    assert message in api.json()["detail"]

    code, _, err = jobs("runs", "--param", token)
    assert code == 2
    assert message in err or "operator" in err


@pytest.mark.parametrize("op", ["=", "~"])
def test_a_parameter_name_over_100_characters_is_refused_as_too_long_at_every_door(client, op):
    name = "a" * 101
    query = {f"param.{name}{op.strip('=')}": "1"}
    why = "a parameter name is at most 100 characters (this one has 101)"
    user = make_superuser()
    client.force_login(user)
    for page in (client.get("/runs/", query), client.get("/runs/", {"param": f"{name}{op}1"})):
        assert page.status_code == 400
        assert why in page.content.decode() and "operator" not in page.content.decode()

    api = token_client(user).get("/api/runs", query)
    assert api.status_code == 422
    assert api.json()["errors"] == {f"param.{'a' * 100}...": [why]}

    code, _, err = jobs("runs", "--param", f"{name}{op}1")
    assert (code, err) == (2, f"param.{'a' * 100}...: {why}")


def test_a_parameter_name_of_100_characters_is_a_name(client):
    wanted = make_run(parameters={"a" * 100: 1})
    make_run(parameters={"a" * 99: 1})
    assert cli_ids("--param", f"{'a' * 100}=1") == {wanted.pk}


def test_states_time_range_worker_schedule_and_user_combine(client):
    alice = get_user_model().objects.create_user("alice")
    day = dt.datetime(2030, 1, 1, 12, tzinfo=dt.UTC)
    wanted = make_run(state=State.FAILED, worker="w1@host", schedule_name="nightly",
                      requested_by=alice, queued_at=day)  # fmt: skip
    also = make_run(state=State.QUEUED, worker="w1@host", schedule_name="nightly",
                    requested_by=alice, queued_at=day + dt.timedelta(hours=3))  # fmt: skip
    make_run(state=State.SUCCEEDED, worker="w1@host", schedule_name="nightly",
             requested_by=alice, queued_at=day)  # fmt: skip
    make_run(state=State.FAILED, worker="w2@host", schedule_name="nightly",
             requested_by=alice, queued_at=day)  # fmt: skip
    make_run(state=State.FAILED, worker="w1@host", schedule_name="other",
             requested_by=alice, queued_at=day)  # fmt: skip
    make_run(state=State.FAILED, worker="w1@host", schedule_name="nightly",
             queued_at=day, source=Source.CLI)  # fmt: skip
    make_run(state=State.FAILED, worker="w1@host", schedule_name="nightly",
             requested_by=alice, queued_at=day + dt.timedelta(days=2))  # fmt: skip
    query = {"state": ["failed", "queued"], "worker": "w1@host", "schedule": "nightly",
             "user": "alice", "date_from": "2030-01-01",
             "date_to": "2030-01-01T23:00"}  # fmt: skip
    user = make_superuser()
    client.force_login(user)
    expected = {wanted.pk, also.pk}
    assert shown(client.get("/runs/", query)) == expected
    assert api_ids(token_client(user).get("/api/runs", query)) == expected
    cli = ["--state", "failed", "--state", "queued", "--worker", "w1@host", "--schedule",
           "nightly", "--user", "alice", "--from", "2030-01-01",
           "--to", "2030-01-01T23:00"]  # fmt: skip
    assert cli_ids(*cli) == expected


def test_the_api_keeps_the_filters_in_its_next_link():
    for n in range(3):
        make_run(parameters={"customer_id": 7, "n": n})
    make_run(parameters={"customer_id": 8})
    api = token_client(make_superuser())
    first = api.get("/api/runs", {"param.customer_id": "7", "limit": 2}).json()
    assert "param.customer_id=7" in first["next"]
    second = api.get(first["next"]).json()
    assert len(first["items"]) + len(second["items"]) == 3
    assert second["next"] is None


def test_an_unknown_filter_or_a_far_date_is_refused_by_the_api_and_the_cli():
    api = token_client(make_superuser())
    assert api.get("/api/runs", {"colour": "red"}).status_code == 422
    far = api.get("/api/runs", {"date_from": "9999-12-31"})
    assert far.status_code == 422
    assert "out of range" in far.json()["detail"]
    assert jobs("runs", "--from", "9999-12-31")[0] == 2
    assert jobs("runs", "--state", "exploded")[0] == 2


def model_fields(run) -> dict:
    return {
        f.attname: getattr(run, f.attname) for f in run._meta.concrete_fields if f.attname != "id"
    }


def test_on_postgresql_an_equality_search_is_served_by_the_gin_index():
    from django.db import connection

    from apps.jobs.models import Run
    from apps.jobs.run_filters import read

    if connection.vendor != "postgresql":
        pytest.skip("the GIN index exists on PostgreSQL only")
    other = make_run(parameters={"customer_id": 1000})
    make_run(parameters={"customer_id": 42})
    # Many others, so that the planner knows `pipeline_id IS NULL` (steps stay off /runs/)
    # selects nearly every row, as on a real table.
    Run.objects.bulk_create(
        Run(
            **{
                **model_fields(other),
                "task_id": f"other-{n}",
                "parameters": {"customer_id": 1000 + n},
            }
        )
        for n in range(20_000)
    )
    runs = read([("param.customer_id", "42")]).apply(Run.objects.all())
    sql, params = runs.query.sql_with_params()
    with connection.cursor() as cursor:  # a small table still: only the plan's shape is asked
        cursor.execute("ANALYZE jobs_run")
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "run_parameters_gin" in plan, plan
    assert runs.count() == 1


@pytest.mark.parametrize("stored", [["x"], "customer_id=42", 5, {"customer_id": {"a": 1}}])
def test_rows_whose_parameters_are_not_an_object_never_break_a_search(client, stored):
    from apps.jobs.models import Run

    odd = make_run(parameters={"x": 1})
    Run.objects.filter(pk=odd.pk).update(parameters=stored)  # as another tool would write it
    found = make_run(parameters={"customer_id": 42})
    client.force_login(make_superuser())
    for query in ({"param.customer_id": "42"}, {"param.customer_id~": "4"}):
        response = client.get("/runs/", query)
        assert response.status_code == 200
        assert shown(response) == {found.pk}


@pytest.mark.parametrize("value", ["1e309", "-1e309", "1" * 30])
def test_a_number_no_parameter_can_hold_matches_only_its_text_at_every_door(
    client, settings, tmp_path, value
):
    """1e309 reads as infinity: no stored parameter is such a number (SQLite took it as
    "malformed JSON", a 500 at every door), so the condition matches the text alone, as
    NaN does; a 30-digit integer is a number a parameter can hold, searched as before."""
    from apps.jobs.models import Run
    from apps.reports import export
    from tests.reports.test_export import make_export_run

    text = make_run(parameters={"x": value})
    make_run(parameters={"x": 1})
    user = make_superuser()
    client.force_login(user)
    assert shown(client.get("/runs/", {"param.x": value})) == {text.pk}
    api = token_client(user)
    assert api_ids(api.get("/api/runs", {"param.x": value})) == {text.pk}
    assert cli_ids("--param", f"x={value}") == {text.pk}
    preview = api.get("/api/runs/bulk/preview", {"action": "discard", "param.x": value})
    assert preview.status_code == 200, preview.content
    assert api.get("/api/runs/failed", {"param.x": value}).status_code == 200
    body = {"action": "discard", "query": f"param.x={value}", "expected": 0}
    response = api.post("/api/runs/bulk", body, content_type="application/json")
    assert response.status_code in (200, 409), response.content
    settings.MEDIA_ROOT = str(tmp_path)
    assert export.export_runs(make_export_run(user), {"filters": f"param.x={value}"})["rows"] == 1
    assert Run.objects.filter(pk=text.pk).exists()
