"""Packed runs (apps/jobs/packs.py): a bulk start with `per_message` sends several runs
per Celery message; each run is still claimed, run, stored and shown as its own, on a
real worker and a real Redis."""

import json
import logging
import os
import signal
from pathlib import Path

import pytest
from celery import signals
from django.db import transaction
from django_celery_results.models import TaskResult

from apps.devstack import processes
from apps.jobs import broker_held, packs, secrets
from apps.jobs.catalog import ParameterError, get_job
from apps.jobs.dispatch import start_run, start_runs
from apps.jobs.models import Run, Source, State
from tests.api.helpers import ADD, token_client
from tests.control.helpers import active_queues
from tests.helpers import make_user, wait_for
from tests.jobs import stubborn_job
from tests.jobs.secret_job import NAME, SECRET, fingerprint
from tests.jobs.test_bulk_enqueue import all_succeeded, unconsumed  # noqa: F401
from tests.jobs.test_cli import jobs
from tests.jobs.test_secrets_end_to_end import all_columns
from tests.reliability.stack import child_pids

with_worker = pytest.mark.django_db(transaction=True)
FLAKY, COUNTDOWN = "apps.demo.tasks.flaky", "apps.demo.tasks.countdown"
SQUARE = "apps.demo.tasks.square"


@pytest.fixture
def published():
    """The task name of every message published during the test."""
    names: list[str] = []

    def note(sender=None, **kwargs):
        names.append(sender)

    signals.before_task_publish.connect(note, weak=False)
    yield names
    signals.before_task_publish.disconnect(note)


@pytest.mark.postgres_pass
@with_worker
def test_a_thousand_parameter_sets_posted_25_per_message_each_run_with_their_own_result(
    celery_worker, published
):
    client = token_client(make_user("alice", jobs=(ADD,)))
    items = [{"x": i, "y": 1} for i in range(1000)]

    response = client.post(f"/api/jobs/{ADD}/runs/bulk", {"items": items, "per_message": 25},
                           content_type="application/json")  # fmt: skip

    assert response.status_code == 201, response.content
    task_ids = [run["task_id"] for run in response.json()["runs"]]
    assert published == [packs.TASK] * 40
    wait_for(lambda: all_succeeded(task_ids), timeout=120, interval=0.2)
    runs = Run.objects.filter(task_id__in=task_ids)
    assert set(runs.values_list("deliveries", flat=True)) == {1}
    alone = start_run(get_job(ADD), {"x": 1, "y": 1}, source=Source.API)
    wait_for(lambda: all_succeeded([alone.task_id]))
    alone.refresh_from_db()
    assert runs.filter(started_at__isnull=False, worker=alone.worker).count() == 1000
    results = dict(TaskResult.objects.filter(task_id__in=task_ids)
                   .values_list("task_id", "result"))  # fmt: skip
    x_of = dict(runs.values_list("task_id", "parameters__x"))
    assert {task_id: json.loads(results[task_id]) for task_id in task_ids} == {
        task_id: x_of[task_id] + 1 for task_id in task_ids
    }
    # Stored as a run sent alone is: its own task name and arguments, not the pack's.
    packed, own = (
        TaskResult.objects.get(task_id=task_id) for task_id in (task_ids[7], alone.task_id)
    )
    assert (packed.task_name, packed.task_kwargs) == (ADD, json.dumps(repr({"x": 7, "y": 1})))
    assert (own.task_name, own.task_kwargs) == (ADD, json.dumps(repr({"x": 1, "y": 1})))


@with_worker
def test_a_run_that_retries_in_a_pack_is_sent_again_alone_and_the_others_go_on(
    celery_worker, published
):
    flaky = get_job(FLAKY)

    runs = start_runs(flaky, [{"failures": 0}, {"failures": 1}, {"failures": 0}],
                      source=Source.API, per_message=3)  # fmt: skip

    wait_for(lambda: all_succeeded([run.task_id for run in runs]), timeout=30)
    assert published.count(packs.TASK) == 1
    assert published.count(FLAKY) == 1  # the retry, alone
    assert [Run.objects.get(pk=run.pk).retries for run in runs] == [0, 1, 0]


@with_worker
def test_a_run_cancelled_before_its_pack_is_taken_is_skipped_and_the_rest_run(celery_worker):
    with transaction.atomic():
        runs = start_runs(get_job(ADD), [{"x": n, "y": n} for n in range(4)],
                          source=Source.API, per_message=4)  # fmt: skip
        runs[1].cancel()

    wait_for(lambda: all_succeeded([runs[0].task_id, runs[2].task_id, runs[3].task_id]))
    cancelled = Run.objects.get(pk=runs[1].pk)
    assert (cancelled.state, cancelled.deliveries, cancelled.started_at) == (
        State.CANCELLED,
        0,
        None,
    )
    assert not TaskResult.objects.filter(task_id=runs[1].task_id).exists()


@with_worker
def test_a_pack_delivered_twice_runs_each_of_its_runs_once(celery_worker):
    runs = start_runs(get_job(ADD), [{"x": n, "y": 0} for n in range(5)],
                      source=Source.API, per_message=5)  # fmt: skip
    wait_for(lambda: all_succeeded([run.task_id for run in runs]))
    finished = list(Run.objects.filter(pk__in=[run.pk for run in runs]).values_list(
        "finished_at", flat=True))  # fmt: skip
    items = [[run.task_id, [], {"x": n, "y": 0}] for n, run in enumerate(runs)]

    done = []

    def note(task_id, **kwargs):
        done.append(task_id)

    pack_task = celery_worker.app.tasks[packs.TASK]
    signals.task_postrun.connect(note, sender=pack_task)
    try:
        again = pack_task.apply_async((ADD, items))
        wait_for(lambda: again.id in done)
    finally:
        signals.task_postrun.disconnect(note, sender=pack_task)

    rows = Run.objects.filter(pk__in=[run.pk for run in runs])
    assert set(rows.values_list("deliveries", flat=True)) == {1}
    assert list(rows.values_list("finished_at", flat=True)) == finished


@with_worker
def test_the_sweeper_sees_a_packs_runs_as_held_while_its_message_waits(unconsumed):  # noqa: F811
    broker, queue = unconsumed
    runs = start_runs(get_job(ADD), [{"x": n, "y": 0} for n in range(3)],
                      source=Source.API, options={"queue": queue}, per_message=3)  # fmt: skip

    held = broker_held.held_task_ids({queue})

    assert {run.task_id for run in runs} <= held
    assert broker.llen(queue) == 1


@pytest.fixture
def stubborn_worker(start_process, unconsumed):  # noqa: F811
    """A real prefork worker (one pool process) of its own queue, which knows the
    stubborn job: (its queue, its process)."""
    _, queue = unconsumed
    name = f"packs-{queue}@localhost"
    worker = start_process(processes.worker_command(
        1, "-Q", queue, "-n", name, "--include", stubborn_job.__name__,
        "--without-mingle", "--without-gossip"))  # fmt: skip
    wait_for(lambda: active_queues(name) is not None or worker.poll() is not None, timeout=60)
    assert worker.poll() is None, Path(worker.log_path).read_text()[-3000:]
    return queue, worker


@pytest.mark.postgres_pass
@with_worker
def test_a_pack_ended_by_its_time_limit_fails_the_run_it_was_in_and_sends_the_rest_alone(
    stubborn_worker,
):
    queue, _ = stubborn_worker
    job = get_job(stubborn_job.NAME)

    first, stuck, *rest = start_runs(job, [{"seconds": 0}, {"seconds": 30}, {"seconds": 0},
                                           {"seconds": 0}], source=Source.API,
                                     options={"queue": queue}, per_message=4)  # fmt: skip

    wait_for(lambda: all_succeeded([first.task_id] + [run.task_id for run in rest]), timeout=60)
    stuck.refresh_from_db()
    assert stuck.state == State.FAILED
    assert stuck.note == "Its pack of runs failed as a whole while it ran (TimeLimitExceeded)."
    assert TaskResult.objects.get(task_id=stuck.task_id).status == "FAILURE"
    # Celery calls the error callback twice for a hard time limit: each sent alone once.
    assert [(run.deliveries, run.send_attempts, run.note) for run in fresh(rest)] == [
        (1, 1, "Sent alone: its pack of runs failed as a whole (TimeLimitExceeded).")
    ] * 2


def fresh(runs):
    return [Run.objects.get(pk=run.pk) for run in runs]


@pytest.mark.postgres_pass
@with_worker
def test_a_pack_whose_pool_process_is_killed_sends_its_unstarted_runs_alone_then_reruns_its_own(
    stubborn_worker,
):
    queue, worker = stubborn_worker
    # A job with the default limits: far from them, the lost process is not mistaken
    # for a pack past its hard limit, however slowly the worker notices it.
    items = [{"x": 1}, {"x": 2, "pause": 2}, {"x": 3}, {"x": 4}]

    first, killed, *rest = start_runs(get_job(SQUARE), items, source=Source.API,
                                      options={"queue": queue}, per_message=4)  # fmt: skip
    wait_for(lambda: Run.objects.get(pk=killed.pk).state == State.STARTED, timeout=60)
    pool = child_pids(worker.pid)
    assert len(pool) == 1
    os.kill(pool[0], signal.SIGKILL)  # as the kernel's OOM killer would

    runs = (first, killed, *rest)
    try:
        wait_for(lambda: all_succeeded([run.task_id for run in runs]), timeout=60)
    except AssertionError:
        states = [(run.state, run.deliveries, run.note) for run in fresh(runs)]
        raise AssertionError(f"{states}\n{Path(worker.log_path).read_text()[-4000:]}") from None
    assert [(run.deliveries, run.note) for run in fresh([first, killed])] == [
        (1, ""),
        (2, "Redelivered after its worker was lost."),
    ]
    assert [(run.deliveries, run.note) for run in fresh(rest)] == [(1, packs.REDELIVERED_NOTE)] * 2


@with_worker
def test_a_pack_starts_runs_only_within_its_budget_and_sends_the_rest_alone(celery_worker):
    job = get_job(stubborn_job.NAME)  # limits 1 s and 3 s: a budget of 0.5 s
    assert packs.budget_seconds(celery_worker.app.tasks[job.name]) == 0.5

    runs = start_runs(job, [{"seconds": 0.4}] * 4, source=Source.API, per_message=4)

    wait_for(lambda: all_succeeded([run.task_id for run in runs]), timeout=30)
    notes = [run.note for run in fresh(runs)]
    assert notes[0] == "" and notes[-1] == packs.BUDGET_NOTE
    assert {run.deliveries for run in fresh(runs)} == {1}


@with_worker
def test_a_pack_message_that_is_not_a_pack_of_a_packable_job_runs_nothing(celery_worker, caplog):
    runs = start_runs(get_job(ADD), [{"x": 1, "y": 1}], source=Source.API,
                      options={"queue": "packs-nowhere"})  # fmt: skip
    run_pack = celery_worker.app.tasks[packs.TASK]
    bad = [(COUNTDOWN, [[runs[0].task_id, [], {"seconds": 1}]]),  # not packable
           (ADD, [[runs[0].task_id, [], None]]),  # no kwargs: the stored masks would run
           (ADD, "not a list")]  # fmt: skip
    done = []

    def note(task_id, **kwargs):
        done.append(task_id)

    signals.task_postrun.connect(note, sender=run_pack)
    try:
        sent = [run_pack.apply_async(body).id for body in bad]
        wait_for(lambda: set(sent) <= set(done))
    finally:
        signals.task_postrun.disconnect(note, sender=run_pack)
    assert Run.objects.get(pk=runs[0].pk).state == State.QUEUED  # not a run of countdown
    assert caplog.text.count("refused a pack of") == 2
    assert caplog.text.count("is sent alone, run by run") == 1


@with_worker
def test_a_rate_limit_set_at_run_time_stops_packing_and_a_pack_sent_before_runs_alone(
    celery_worker, published
):
    from apps.control.models import RateLimit

    with transaction.atomic():  # the pack is published as the limit is committed
        runs = start_runs(get_job(ADD), [{"x": n, "y": 1} for n in range(3)],
                          source=Source.API, per_message=3)  # fmt: skip
        RateLimit.objects.create(job_name=ADD, rate="100/s")

    wait_for(lambda: all_succeeded([run.task_id for run in runs]))
    assert published.count(packs.TASK) == 1 and published.count(ADD) == 3
    note = "Sent alone: a rate limit is set for this job (queue and worker control)."
    assert {run.note for run in fresh(runs)} == {note}
    client = token_client(make_user("alice", jobs=(ADD,)))
    response = client.post(f"/api/jobs/{ADD}/runs/bulk", {"items": [{"x": 1, "y": 1}],
                           "per_message": 2}, content_type="application/json")  # fmt: skip
    assert response.status_code == 422
    assert "a rate limit is set for this job" in response.content.decode()


def test_a_pack_goes_where_the_jobs_own_message_would_with_its_routing_options(settings):
    from celery import current_app

    task = current_app.tasks[ADD]
    own = current_app.amqp.router.route({}, ADD, (), {}, task)
    assert packs.route_of(task, "")["queue"].name == own["queue"].name
    assert packs.route_of(task, "elsewhere")["queue"].name == "elsewhere"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("job", "per_message", "reason"),
    [
        (ADD, 0, "expected a whole number from 1 to 100"),
        (ADD, 101, "expected a whole number from 1 to 100"),
        (ADD, "5", "expected a whole number from 1 to 100"),
        (ADD, True, "expected a whole number from 1 to 100"),
        (COUNTDOWN, 5, "cancellable"),
        ("apps.jobs.tasks.bulk_runs", 5, None),  # idempotent, not cancellable: packable
    ],
)
def test_runs_per_message_are_bounded_and_only_packable_jobs_are_packed(job, per_message, reason):
    if reason is None:
        assert packs.packing_refused(get_job(job)) is None
        return
    with pytest.raises(ParameterError) as refused:
        start_runs(get_job(job), [{"seconds": 1}] if job == COUNTDOWN else [{"x": 1, "y": 1}],
                   source=Source.API, per_message=per_message)  # fmt: skip
    assert list(refused.value.errors) == ["per_message"]
    assert reason in refused.value.one_line()
    assert not Run.objects.exists()


@pytest.mark.django_db
def test_the_api_refuses_packing_a_job_that_is_not_idempotent_with_a_422(settings):
    from apps.jobs import catalog

    not_idempotent = catalog.Job(name="x.once", title="Once", description="", params=(),
                                 idempotent=False)  # fmt: skip
    assert "idempotent" in packs.packing_refused(not_idempotent)
    client = token_client(make_user("alice", jobs=(COUNTDOWN,)))

    response = client.post(f"/api/jobs/{COUNTDOWN}/runs/bulk",
                           {"items": [{"seconds": 1}], "per_message": 2},
                           content_type="application/json")  # fmt: skip

    assert response.status_code == 422
    assert "per_message" in response.content.decode()
    assert not Run.objects.exists()


@pytest.mark.django_db
def test_the_cli_refuses_per_message_without_many_or_past_its_bound(tmp_path):
    items = tmp_path / "items.json"
    items.write_text(json.dumps([{"x": 1, "y": 2}]))

    for arguments in (["run", ADD, "x=1", "y=2", "--per-message", "5"],
                      ["run", ADD, "--many", str(items), "--per-message", "500"]):  # fmt: skip
        code, out, err = jobs(*arguments)
        assert code == 2, (arguments, out, err)
        assert "per" in err and len(err.strip().splitlines()) == 1
    assert not Run.objects.exists()


@pytest.mark.postgres_pass
@with_worker
def test_a_secret_in_packed_runs_reaches_each_job_and_appears_nowhere_else(celery_worker, caplog):
    caplog.set_level(logging.INFO)
    items = [{"token": SECRET, "label": "plain"}, {"token": SECRET, "leak": "return"},
             {"token": SECRET, "leak": "raise"}]  # fmt: skip

    runs = start_runs(get_job(NAME), items, source=Source.API, per_message=3)

    wait_for(lambda: Run.objects.filter(pk__in=[r.pk for r in runs], finished_at__isnull=False)
             .count() == 3)  # fmt: skip
    states = [Run.objects.get(pk=run.pk).state for run in runs]
    assert states == [State.SUCCEEDED, State.SUCCEEDED, State.FAILED]
    assert TaskResult.objects.get(task_id=runs[0].task_id).result == (
        f'"fingerprint {fingerprint(SECRET)}"'
    )
    assert secrets.MASK in TaskResult.objects.get(task_id=runs[0].task_id).task_kwargs
    seen = {"results table": all_columns(TaskResult._meta.db_table),
            "runs table": all_columns(Run._meta.db_table), "worker log": caplog.text}  # fmt: skip
    assert {place: SECRET in text for place, text in seen.items()} == dict.fromkeys(seen, False)
    assert "use_secret got token" in seen["worker log"]
