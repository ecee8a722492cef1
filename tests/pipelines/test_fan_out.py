"""A fan-out of 1,000 steps and the chord joining them: it completes, and its page is
drawn with the same few queries as a small one."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_celery_results.models import ChordCounter

from apps.demo.pipelines import sum_of_squares
from apps.jobs.catalog import get_job
from apps.jobs.dispatch import start_run
from apps.jobs.models import Run, Source, State
from apps.jobs.presenting import describe
from tests.helpers import make_superuser, wait_for

from .test_page import make_pipeline_run

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.mark.django_db(transaction=True)
@pytest.mark.scale  # about 40 s: `make scale`; the short version is test_running's chord
@pytest.mark.postgres_pass
@pytest.mark.slow
def test_a_fan_out_of_a_thousand_steps_and_its_chord_complete(celery_worker):
    job = get_job(sum_of_squares.name)
    run = start_run(job, {"count": 1000}, source=Source.CLI, label="test")
    run = wait_for(lambda: Run.objects.filter(pk=run.pk, state__in=["succeeded", "failed"])
                   .first(), timeout=240)  # fmt: skip
    assert run.state == State.SUCCEEDED, run.note
    assert run.steps.filter(state=State.SUCCEEDED).count() == 1002
    assert describe(run).result == 2 * sum(i * i for i in range(1000))
    assert not ChordCounter.objects.exists()


@pytest.mark.django_db
@pytest.mark.once  # the same few queries on either database; building 1,000 steps costs
def test_the_page_of_a_thousand_steps_takes_as_many_queries_as_one_of_three(client):
    client.force_login(make_superuser())
    small, large = make_pipeline_run(count=3), make_pipeline_run(count=1000)
    large.steps.filter(step__in=["square[5]", "square[700]"]).update(state=State.FAILED)
    client.get(small.get_absolute_url(), **HTMX)  # the workers' answers kept, as on a live site
    counts = []
    for run in (small, large):
        with CaptureQueriesContext(connection) as queries:
            body = client.get(run.get_absolute_url(), **HTMX).content.decode()
        counts.append(len(queries))
    assert counts[0] == counts[1]
    assert 'data-step="square[700]" data-state="failed"' in body  # failed ones shown
    assert "and 976 more" in body
