"""A worker SIGKILLed in the middle of a chord: the members it held come back (late
acknowledgement, the broker's visibility timeout) and the pipeline still completes."""

import pytest

from apps.demo.pipelines import sum_of_squares
from apps.jobs.catalog import get_job
from apps.jobs.dispatch import start_run
from apps.jobs.models import Run, Source, State
from apps.jobs.presenting import describe
from tests.helpers import point_celery_at, wait_for
from tests.reliability.stack import Fleet, RedisServer

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.postgres_pass,
    pytest.mark.timeout(300),
]


@pytest.fixture
def own_redis(tmp_path, redis_url):
    """A broker of this test's own, so the session's in-process worker takes nothing."""
    server = RedisServer(tmp_path / "redis")
    server.start()
    point_celery_at(server.url)
    yield server
    point_celery_at(redis_url)
    server.stop()


def test_a_worker_killed_in_the_middle_of_a_chord_does_not_stop_the_pipeline(
    start_process, own_redis
):
    fleet = Fleet(start_process, {"CELERY_BROKER_URL": own_redis.url,
                                  "CELERY_VISIBILITY_TIMEOUT": "3"})  # fmt: skip
    fleet.start("pipe")
    fleet.wait_ready("pipe")
    job = get_job(sum_of_squares.name)
    run = start_run(job, {"count": 4, "pause": 1.0}, source=Source.CLI, label="test")
    members = Run.objects.filter(pipeline__task_id=run.task_id, step__startswith="square[")
    wait_for(lambda: members.filter(state=State.STARTED).count() == 2, timeout=90)
    fleet.restart("pipe")  # SIGKILL the worker and its pool, start it again

    run = wait_for(lambda: Run.objects.filter(pk=run.pk, state__in=["succeeded", "failed"])
                   .first(), timeout=120)  # fmt: skip
    assert run.state == State.SUCCEEDED, run.note
    assert describe(run).result == 2 * (0 + 1 + 4 + 9)
    assert members.filter(deliveries__gte=2).exists()  # some came back and ran again
