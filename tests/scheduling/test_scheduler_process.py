"""A real `celery beat` process follows edits made while it runs: new, changed,
disabled, enabled again (without a burst of missed runs) and deleted schedules."""

import itertools
import json
import time
from datetime import datetime

import pytest
from django_celery_beat.models import IntervalSchedule, PeriodicTask, PeriodicTasks

from apps.devstack import processes
from tests.helpers import wait_for

from .beat_helpers import make_queue_name, queued_messages

# One database is enough for a real beat process: the same edits (changed, disabled,
# enabled again, deleted) reach the scheduler in this process on both databases in
# test_scheduler.py.
pytestmark = [pytest.mark.slow, pytest.mark.postgres_pass, pytest.mark.django_db(transaction=True)]


def sent(queue: str) -> list[dict]:
    return [{"kwargs": m["headers"]["kwargsrepr"], "id": m["headers"]["id"],
             "due": datetime.fromisoformat(m["headers"]["switchyard_due"]).timestamp()}
            for m in queued_messages(queue)]  # fmt: skip


def start_beat_with_a_schedule(start_process, queue: str) -> PeriodicTask:
    """A beat process, and a schedule (every 2 s) created while it runs."""
    start_process(processes.beat_command("--max-interval=1"))
    wait_for(lambda: PeriodicTask.objects.filter(name="celery.backend_cleanup").exists())
    every_2s, _ = IntervalSchedule.objects.get_or_create(every=2, period="seconds")
    task = PeriodicTask.objects.create(
        name="edited", task="apps.demo.tasks.add", interval=every_2s, queue=queue,
        kwargs=json.dumps({"x": 1, "y": 1}),
    )  # fmt: skip
    wait_for(lambda: sent(queue), timeout=10)
    return task


def assert_nothing_more_sent(queue: str) -> None:
    """Once beat has read the change, the schedule sends nothing for 2.5 periods.

    "Has read the change" is observed, not guessed with a sleep: a witness schedule
    saved after the change reaches beat in the same reload (DatabaseScheduler reloads
    every row when PeriodicTasks changes), so its first message proves the reload.
    """
    witness_queue = f"{queue}-witness"
    every_1s, _ = IntervalSchedule.objects.get_or_create(every=1, period="seconds")
    PeriodicTask.objects.create(name=f"witness {queue}", task="apps.demo.tasks.add",
                                interval=every_1s, queue=witness_queue,
                                kwargs=json.dumps({"x": 1, "y": 1}))  # fmt: skip
    wait_for(lambda: sent(witness_queue), timeout=30)
    count = len(sent(queue))
    time.sleep(5)  # nothing may happen: waiting is the assertion (2.5 periods of 2 s)
    assert len(sent(queue)) == count


def test_a_running_beat_picks_up_a_change_within_seconds_and_stops_a_deleted_schedule(
    start_process,
):
    queue = make_queue_name()
    task = start_beat_with_a_schedule(start_process, queue)
    task.kwargs = json.dumps({"x": 2, "y": 2})
    task.save()
    wait_for(lambda: "'x': 2" in sent(queue)[-1]["kwargs"], timeout=10)
    task.delete()
    assert_nothing_more_sent(queue)


def test_disabling_stops_a_schedule_and_enabling_it_fires_no_burst_of_missed_runs(
    start_process,
):
    queue = make_queue_name()
    task = start_beat_with_a_schedule(start_process, queue)
    PeriodicTask.objects.filter(pk=task.pk).update(enabled=False, last_run_at=None)
    PeriodicTasks.update_changed()  # as the admin's "disable" action does
    assert_nothing_more_sent(queue)

    count = len(sent(queue))
    task.refresh_from_db()
    task.enabled = True
    task.save()
    enabled_at = task.date_changed.timestamp()
    wait_for(lambda: len(sent(queue)) > count + 1, timeout=10)
    dues = [message["due"] for message in sent(queue)[count:]]
    assert dues[0] >= enabled_at + 2 - 0.01, "enabling fired a missed run at once"
    assert all(b - a >= 2 - 0.01 for a, b in itertools.pairwise(dues)), "a burst of runs"
