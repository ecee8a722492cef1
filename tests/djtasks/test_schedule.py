"""A Tasks API task on a schedule: beat sends it, a worker runs it, the run says so."""

import json

import pytest

from apps.demo.tasks_api.tasks import greet
from apps.jobs.models import Run, Source, State
from tests.helpers import wait_for
from tests.scheduling.beat_helpers import make_schedule, make_scheduler

pytestmark = pytest.mark.django_db(transaction=True)


def test_beat_sends_a_scheduled_tasks_api_task_and_a_worker_runs_it(celery_worker):
    make_schedule("greet by beat", task=greet.module_path,
                  kwargs=json.dumps({"name": "Beat"}), due_in=-1)  # fmt: skip
    beat = make_scheduler()
    try:
        beat.tick()
    finally:
        beat.close()
    run = wait_for(lambda: Run.objects.filter(schedule_name="greet by beat",
                                              state=State.SUCCEEDED).first())  # fmt: skip
    assert (run.source, run.job_name) == (Source.SCHEDULE, greet.module_path)
    assert greet.get_result(run.task_id).return_value == "Hello, Beat!"
