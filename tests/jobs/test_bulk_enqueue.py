"""Starting many runs at once (API, CLI, code), `.delay()` inside a transaction, Celery's
group and chunks: every run recorded before its message, nothing lost with the broker down."""

import io
import json
from datetime import timedelta

import pytest
import redis
from celery import group
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from kombu import Producer
from kombu.exceptions import OperationalError

from apps.demo.tasks import add
from apps.devstack import processes
from apps.jobs.catalog import get_job
from apps.jobs.dispatch import start_run, start_runs
from apps.jobs.models import Run, Source, State
from apps.jobs.sweeper import send_pending
from tests.api.helpers import ADD, token_client
from tests.helpers import make_user, point_celery_at, wait_for
from tests.jobs.test_cli import jobs

database = pytest.mark.django_db
with_worker = pytest.mark.django_db(transaction=True)


@pytest.fixture
def broker_down(redis_url):
    """Point the app at a closed port for the test, then back at the real Redis."""
    point_celery_at(f"redis://127.0.0.1:{processes.free_port()}/0")
    yield
    point_celery_at(redis_url)


@pytest.fixture
def unconsumed(redis_url):
    """A queue no worker reads: what was published stays there to be looked at."""
    broker = redis.Redis.from_url(redis_url)
    queue = "bulk-test-unconsumed"
    broker.delete(queue)
    yield broker, queue
    broker.delete(queue)


def queued_ids(broker, queue: str) -> list[str]:
    """Task ids of the messages in `queue`, oldest first."""
    return [json.loads(raw)["headers"]["id"] for raw in reversed(broker.lrange(queue, 0, -1))]


def bulk(client, items, job: str = ADD):
    return client.post(f"/api/jobs/{job}/runs/bulk", {"items": items},
                       content_type="application/json")  # fmt: skip


def all_succeeded(task_ids) -> bool:
    runs = Run.objects.filter(task_id__in=list(task_ids))
    return runs.filter(state=State.SUCCEEDED).count() == len(task_ids)


# The API ----------------------------------------------------------------------------------


@pytest.mark.postgres_pass
@with_worker
def test_a_thousand_parameter_sets_through_the_api_are_all_recorded_and_succeed(celery_worker):
    client = token_client(make_user("alice", jobs=(ADD,)))
    response = bulk(client, [{"x": i, "y": 1} for i in range(1000)])
    assert response.status_code == 201
    body = response.json()
    assert body["count"] == 1000 and [run["state"] for run in body["runs"]] == ["queued"] * 1000
    task_ids = [run["task_id"] for run in body["runs"]]
    wait_for(lambda: all_succeeded(task_ids), timeout=120, interval=0.2)
    runs = Run.objects.filter(task_id__in=task_ids)
    assert runs.filter(source=Source.API, requested_by__username="alice").count() == 1000
    assert sorted(runs.values_list("parameters__x", flat=True)) == list(range(1000))
    assert set(runs.values_list("deliveries", flat=True)) == {1}


@database
@pytest.mark.parametrize(
    ("items", "named"),
    [
        ([{"x": 1, "y": 2}, {"x": "a lot", "y": 2}], "items[1].x"),
        ([{"x": 1, "y": 2}, {"x": 1, "y": 2, "z": 3}], "items[1].z"),
        ([{"x": 1, "y": 2}, {"x": 1}], "items[1].y"),
        ([{"x": 1, "y": 2}, [1, 2]], "items[1]"),
        ([{"x": 1, "y": 2}, "x=1"], "items[1]"),
        ([{"x": 2**70, "y": 2}], "items[0].x"),
        ([{"x": "\x00", "y": 2}], "items[0].x"),
        ([], "items"),
        ([{"x": 1, "y": 2}] * 10_001, "items"),
    ],
)
def test_a_bad_item_is_refused_with_422_naming_it_and_nothing_is_written(items, named):
    client = token_client(make_user("alice", jobs=(ADD,)))
    response = bulk(client, items)
    assert response.status_code == 422
    assert named in response.json()["errors"]
    assert named.split(".")[0] in response.json()["detail"]
    assert not Run.objects.exists()


@database
def test_a_body_whose_items_are_not_a_list_is_refused_with_422():
    client = token_client(make_user("alice", jobs=(ADD,)))
    response = client.post(f"/api/jobs/{ADD}/runs/bulk", {"items": {"x": 1}},
                           content_type="application/json")  # fmt: skip
    assert response.status_code == 422
    assert "items" in response.json()["errors"]
    assert not Run.objects.exists()


@database
def test_a_user_who_may_not_run_the_job_gets_403_and_nothing_is_written():
    client = token_client(make_user("bob"))
    assert bulk(client, [{"x": 1, "y": 2}]).status_code == 403
    assert not Run.objects.exists()


# The CLI ----------------------------------------------------------------------------------


@with_worker
def test_the_cli_starts_one_run_per_line_of_a_file(tmp_path, celery_worker):
    sets = tmp_path / "sets.jsonl"
    sets.write_text('{"x": 1, "y": 2}\n\n{"x": 3, "y": 4}\n{"x": 5, "y": "6"}\n')
    status, out, _ = jobs("run", ADD, "--many", str(sets), "--json")
    assert status == 0
    task_ids = [run["task_id"] for run in json.loads(out)]
    wait_for(lambda: all_succeeded(task_ids))
    runs = Run.objects.filter(task_id__in=task_ids, source=Source.CLI)
    assert sorted(run.parameters["x"] + run.parameters["y"] for run in runs) == [3, 7, 11]


@database
@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('[{"x": 1, "y": 2}, {"x": 1, "y": "two"}]', "items[1].y"),
        ('{"x": 1, "y": 2}\n{"x": 1, "y": ', "line 2"),
        ("", "expected 1 to"),
        ('[{"x": 1, "y": 2}, 7]', "items[1]"),
    ],
)
def test_the_cli_refuses_a_bad_file_with_exit_status_2_and_writes_nothing(tmp_path, text, reason):
    sets = tmp_path / "sets.json"
    sets.write_text(text)
    status, _, error = jobs("run", ADD, "--many", str(sets))
    assert status == 2
    assert reason in error and "\n" not in error
    assert not Run.objects.exists()


@database
@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"\xff\xfe", "not UTF-8 text (byte 0xff at offset 0)"),
        (b'{"x": 1, "y": "caf\xe9"}', "not UTF-8 text (byte 0xe9 at offset 18)"),
    ],
)
def test_the_cli_refuses_a_file_that_is_not_utf8_with_one_line_and_exit_2(
    tmp_path, content, reason
):
    sets = tmp_path / "sets.json"
    sets.write_bytes(content)
    status, _, error = jobs("run", ADD, "--many", str(sets))
    assert (status, error) == (2, f"{sets}: {reason}")
    assert not Run.objects.exists()


@database
def test_the_cli_refuses_stdin_that_is_not_utf8_with_exit_2(monkeypatch):
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"\xff\xfe")))
    status, _, error = jobs("run", ADD, "--many", "-")
    assert (status, error) == (2, "stdin: not UTF-8 text (byte 0xff at offset 0)")
    assert not Run.objects.exists()


@database
def test_the_cli_refuses_a_missing_file_or_key_value_pairs_beside_many(tmp_path):
    assert jobs("run", ADD, "--many", str(tmp_path / "absent.json"))[0] == 2
    sets = tmp_path / "sets.json"
    sets.write_text('[{"x": 1, "y": 2}]')
    assert jobs("run", ADD, "x=1", "--many", str(sets))[0] == 2
    assert not Run.objects.exists()


# From code: a transaction of .delay() calls, start_runs ------------------------------------


@with_worker
def test_delay_calls_in_a_transaction_are_recorded_in_it_and_sent_on_commit(unconsumed):
    broker, queue = unconsumed
    with transaction.atomic():
        task_ids = [add.apply_async((i, i), queue=queue).id for i in range(20)]
        assert Run.objects.filter(task_id__in=task_ids, state=State.QUEUED).count() == 20
        assert broker.llen(queue) == 0
    assert queued_ids(broker, queue) == task_ids


@with_worker
def test_a_transaction_of_delay_calls_with_the_broker_down_is_sent_exactly_once_later(
    broker_down, redis_url, celery_worker
):
    with transaction.atomic():
        task_ids = [add.delay(i, 1).id for i in range(10)]
    runs = Run.objects.filter(task_id__in=task_ids)
    assert runs.filter(state=State.PENDING_SEND).count() == 10
    assert send_pending(older_than=timedelta(0)) == 0
    point_celery_at(redis_url)
    assert send_pending(older_than=timedelta(0)) == 10
    assert send_pending(older_than=timedelta(0)) == 0
    wait_for(lambda: all_succeeded(task_ids))
    assert set(runs.values_list("deliveries", flat=True)) == {1}


@with_worker
def test_a_rolled_back_savepoint_or_transaction_sends_nothing_of_its_own(unconsumed):
    broker, queue = unconsumed
    with transaction.atomic():
        kept = add.apply_async((1, 1), queue=queue)
        try:
            with transaction.atomic():
                dropped = add.apply_async((2, 2), queue=queue)
                raise RuntimeError("roll back")
        except RuntimeError:
            pass
    assert queued_ids(broker, queue) == [kept.id]
    assert not Run.objects.filter(task_id=dropped.id).exists()
    with transaction.atomic():
        add.apply_async((3, 3), queue=queue)
        transaction.set_rollback(True)
    assert queued_ids(broker, queue) == [kept.id]


@with_worker
def test_start_runs_from_code_checks_every_item_first(celery_worker):
    job = get_job(ADD)
    with pytest.raises(Exception, match=r"items\[2\]\.x"):
        start_runs(job, [{"x": 1, "y": 1}, {"x": 2, "y": 2}, {"x": None, "y": 3}],
                   source=Source.SHELL)  # fmt: skip
    assert not Run.objects.exists()
    runs = start_runs(job, [{"x": 1, "y": 1}, {"x": 2, "y": 2}], source=Source.SHELL)
    wait_for(lambda: all_succeeded([run.task_id for run in runs]))


@with_worker
def test_start_runs_writes_its_runs_in_one_insert_and_publishes_them_all_on_commit(unconsumed):
    broker, queue = unconsumed
    with CaptureQueriesContext(connection) as queries:
        runs = start_runs(get_job(ADD), [{"x": i, "y": 1} for i in range(50)],
                          source=Source.SHELL, options={"queue": queue})  # fmt: skip
    statements = [query["sql"].split(None, 1)[0].upper() for query in queries]
    fields = [field for field in Run._meta.concrete_fields if not field.primary_key]
    per_insert = connection.ops.bulk_batch_size(fields, runs)  # SQLite: 41, PostgreSQL: all
    assert statements.count("INSERT") == -(-50 // per_insert)
    others = [statement for statement in statements if statement != "INSERT"]
    assert sorted(others) in (["BEGIN", "COMMIT", "SELECT"], ["SELECT"]), statements
    assert queued_ids(broker, queue) == [run.task_id for run in runs]


@with_worker
def test_a_started_run_is_published_without_kombus_declare_check_on_redis(unconsumed, monkeypatch):
    """Redis routes a message to its queue by name: start_run skips kombu's declare
    check (the publish guard's doing, apps/jobs/sending.py) for a named queue too."""
    broker, queue = unconsumed
    declared = []
    publish = Producer.publish

    def spy(producer, body, *args, **kwargs):
        declared.append(kwargs.get("declare"))
        return publish(producer, body, *args, **kwargs)

    monkeypatch.setattr(Producer, "publish", spy)
    run = start_run(get_job(ADD), {"x": 1, "y": 2}, source=Source.SHELL,
                    options={"queue": queue})  # fmt: skip
    assert declared == [[]]
    assert queued_ids(broker, queue) == [run.task_id]


# One .delay(), group and chunks ------------------------------------------------------------


@with_worker
def test_a_single_delay_with_the_broker_down_is_recorded_and_sent_once_later(
    broker_down, redis_url, celery_worker
):
    with pytest.raises(OperationalError):
        add.delay(2, 3)
    run = Run.objects.get()
    assert run.state == State.PENDING_SEND
    point_celery_at(redis_url)
    assert send_pending(older_than=timedelta(0)) == 1
    assert send_pending(older_than=timedelta(0)) == 0
    wait_for(lambda: all_succeeded([run.task_id]))
    assert Run.objects.get(pk=run.pk).deliveries == 1


@with_worker
def test_a_group_of_catalog_jobs_is_recorded_one_run_per_task(celery_worker):
    result = group(add.s(i, 10) for i in range(5)).apply_async()
    assert sorted(result.get(timeout=20, interval=0.02)) == [10, 11, 12, 13, 14]
    task_ids = [child.id for child in result.results]
    wait_for(lambda: all_succeeded(task_ids))


@with_worker
def test_chunks_of_a_catalog_job_are_recorded_one_run_per_chunk(celery_worker):
    result = add.chunks([(i, i) for i in range(6)], 3).apply_async()
    assert result.get(timeout=20, interval=0.02) == [[0, 2, 4], [6, 8, 10]]
    task_ids = [child.id for child in result.results]
    wait_for(lambda: all_succeeded(task_ids))
    chunk = Run.objects.get(task_id=task_ids[0])
    assert chunk.job_name == "celery.starmap"
    assert chunk.parameters["it"] == [[0, 0], [1, 1], [2, 2]]
