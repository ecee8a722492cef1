"""Bulk actions end to end, with the real Redis and a real worker: retried runs really
run again, failures are grouped by the error Celery stored, and a set of 100,000 runs
is worked through by the bulk job with its own run record and progress."""

import os
import re
import uuid

import pytest
from django.utils import timezone

from apps.jobs import bulk
from apps.jobs.models import Run, Source, State
from project import celery_app
from tests.api.helpers import token_client
from tests.helpers import make_superuser, wait_for

pytestmark = [pytest.mark.django_db(transaction=True)]

ADD = "apps.demo.tasks.add"
MUL = "apps.demo.tasks.mul"
# 2,000 in `make test` (past INLINE_LIMIT: the job does it); the full run:
#   BULK_TEST_RUNS=100000 python -m tests.run_suite --only postgres \
#       tests/jobs/test_bulk_with_worker.py
BIG = int(os.environ.get("BULK_TEST_RUNS", "2000"))


def make_failed_runs(n: int, job_name: str = ADD, **kw) -> None:
    """n failed runs written straight into the table, as fast as it goes."""
    now = timezone.now()
    kw.setdefault("parameters", {"x": 1, "y": 2})
    rows = [Run(task_id=str(uuid.uuid4()), job_name=job_name, source=Source.WEB,
                state=State.FAILED, queued_at=now, finished_at=now, **kw)
            for _ in range(n)]  # fmt: skip
    Run.objects.bulk_create(rows, batch_size=5000)


def confirm_and_post(client, action: str, query: str):
    page = client.get(f"/runs/bulk/?action={action}&{query}").content.decode()
    fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', page))
    fields = {k: v.replace("&amp;", "&") for k, v in fields.items()}
    return client.post("/runs/bulk/", fields)


@pytest.mark.postgres_pass
def test_retrying_a_few_hundred_failed_runs_runs_each_again_on_the_worker(client, celery_worker):
    make_failed_runs(300, parameters={"x": 20, "y": 22})
    make_failed_runs(5, parameters={"x": 1, "y": 1})  # not in the filter
    client.force_login(make_superuser())

    response = confirm_and_post(client, "retry", "state=failed&param.x=20")

    assert response.status_code == 302
    retried = Run.objects.filter(rerun_of__isnull=False)
    wait_for(lambda: retried.filter(state=State.SUCCEEDED).count() == 300, timeout=120)
    assert retried.count() == 300
    assert Run.objects.filter(state=State.FAILED, handled_at__isnull=True).count() == 5


def test_failures_are_grouped_by_the_error_celery_stored_and_a_group_is_retried(
    client, celery_worker
):
    for _ in range(3):
        celery_app.tasks[MUL].apply_async(kwargs={"x": None, "y": 2})
    celery_app.tasks[MUL].apply_async(kwargs={"x": [1], "y": "a"})
    wait_for(lambda: Run.objects.filter(job_name=MUL, state=State.FAILED).count() == 4)
    from django_celery_results.models import TaskResult

    wait_for(lambda: TaskResult.objects.filter(status="FAILURE").count() == 4)
    client.force_login(make_superuser())

    groups = {(g.error_type, g.count) for g in client.get("/runs/failed/").context["groups"]}
    assert groups == {("TypeError", 3), ("TypeError", 1)}
    page = client.get("/runs/failed/").content.decode()
    link = re.search(r'href="(/runs/bulk/\?action=retry&amp;[^"]+NoneType[^"]+)"', page)[1]
    confirm = client.get(link.replace("&amp;", "&"))
    assert confirm.context["count"] == 3

    query = link.replace("&amp;", "&").split("?", 1)[1].removeprefix("action=retry&")
    response = confirm_and_post(client, "retry", query)

    assert response.status_code == 302
    assert Run.objects.filter(rerun_of__isnull=False).count() == 3
    # The retries run (and fail) anew: the three originals are handled, the new ones not.
    wait_for(lambda: Run.objects.filter(rerun_of__isnull=False, state=State.FAILED).count() == 3)
    assert sum(g.count for g in client.get("/runs/failed/").context["groups"]) == 4


@pytest.mark.postgres_pass
@pytest.mark.slow
def test_discarding_100000_failed_runs_goes_through_the_bulk_job_with_progress(celery_worker):
    make_failed_runs(BIG)
    make_failed_runs(3, job_name=MUL)  # another job: out of the filter
    api = token_client(make_superuser())
    preview = api.get("/api/runs/bulk/preview", {"action": "discard", "job": ADD}).json()
    assert preview["count"] == BIG

    body = {"action": "discard", "query": preview["query"], "expected": BIG}
    response = api.post("/api/runs/bulk", body, content_type="application/json")

    assert response.status_code == 202, response.content
    job_run = Run.objects.get(pk=response.json()["run"])
    wait_for(lambda: Run.objects.get(pk=job_run.pk).is_finished, timeout=240, interval=0.5)
    job_run.refresh_from_db()
    assert job_run.state == State.SUCCEEDED, job_run.note
    assert job_run.progress_done == job_run.progress_total == BIG
    result = api.get(f"/api/runs/{job_run.pk}").json()["result"]
    assert (result["matched"], result["done"], result["changed"]) == (BIG, BIG, 0)
    assert Run.objects.filter(job_name=ADD, handled_at__isnull=False).count() == BIG
    assert Run.objects.filter(job_name=MUL, handled_at__isnull=True).count() == 3
    assert bulk.INLINE_LIMIT < BIG


def test_a_retry_handed_to_the_bulk_job_runs_each_again_as_the_person_who_asked(
    client, celery_worker, monkeypatch
):
    monkeypatch.setattr(bulk, "INLINE_LIMIT", 2)
    make_failed_runs(5, parameters={"x": 2, "y": 3})
    root = make_superuser()
    client.force_login(root)

    response = confirm_and_post(client, "retry", "state=failed")

    job_run = Run.objects.get(job_name=bulk.JOB)
    assert response["Location"] == f"/runs/{job_run.pk}/"
    retried = Run.objects.filter(rerun_of__isnull=False)
    wait_for(lambda: retried.filter(state=State.SUCCEEDED).count() == 5, timeout=60)
    assert set(retried.values_list("requested_by", "source").distinct()) == {(root.pk, "web")}
    wait_for(lambda: Run.objects.get(pk=job_run.pk).state == State.SUCCEEDED)
    assert "5 of 5 runs retried." in client.get(f"/runs/{job_run.pk}/").content.decode()
