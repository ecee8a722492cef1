"""A real `celery beat` process with schedules holding every out-of-range value the model
fields can store (tests/scheduling/bad_rows.py, written straight to the tables): it stays
up, skips each bad one with one log line, and a good schedule keeps firing on time."""

import itertools
import json
import re
from datetime import datetime
from pathlib import Path

import pytest
from django_celery_beat.models import IntervalSchedule, PeriodicTask, PeriodicTasks

from apps.devstack import processes
from apps.jobs.models import Run
from apps.ops.alerts import check_alerts
from apps.ops.models import Incident, Kind
from tests.helpers import wait_for

from .bad_rows import FAR, broken_names, make_bad_rows
from .beat_helpers import make_queue_name, queued_messages

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ALERT_ONLY = {"bad grace huge"}  # beat can run it; only the alert sweep needs the grace


def good_runs() -> int:
    return Run.objects.filter(schedule_name="good").count()


def due_times(queue: str) -> list[float]:
    return [datetime.fromisoformat(m["headers"]["switchyard_due"]).timestamp()
            for m in queued_messages(queue)]  # fmt: skip


def one_message_per_run(queue: str) -> list[float] | None:
    """The queued messages' due times when there is one per good run recorded. Beat sends
    every second meanwhile: the runs are counted before and after the messages are read,
    and a read between a record and its publish is tried again."""
    before, dues, after = good_runs(), due_times(queue), good_runs()
    return dues if before == len(dues) == after else None


def skip_lines(log_path: str) -> dict[str, int]:
    """How often beat logged skipping each schedule."""
    text = Path(log_path).read_text(errors="replace")
    names = re.findall(r"beat: skipping schedule ('.*?'|\".*?\") until it is fixed", text)
    counts: dict[str, int] = {}
    for name in names:
        counts[eval(name)] = counts.get(eval(name), 0) + 1  # a repr() of the name
    return counts


def break_a_good_row_while_beat_runs(name: str, **fields) -> None:
    every_minute = IntervalSchedule.objects.get_or_create(every=1, period="minutes")[0]
    task = PeriodicTask.objects.create(name=name, task="apps.demo.tasks.add",
                                       interval=every_minute, queue="test-beat-nobody",
                                       kwargs=json.dumps({"x": 1, "y": 2}))  # fmt: skip
    PeriodicTask.objects.filter(pk=task.pk).update(**fields)  # no save(), no validation
    PeriodicTasks.update_changed()


def test_beat_stays_up_and_keeps_a_good_schedule_on_time_whatever_the_other_rows_hold(
    start_process,
):
    queue = make_queue_name()
    bad = make_bad_rows("test-beat-nobody", odd_due_now=True)
    every_second = IntervalSchedule.objects.get_or_create(every=1, period="seconds")[0]
    PeriodicTask.objects.create(name="good", task="apps.demo.tasks.add", interval=every_second,
                                queue=queue, kwargs=json.dumps({"x": 1, "y": 1}))  # fmt: skip
    beat = start_process(processes.beat_command("--max-interval=1"))

    wait_for(lambda: good_runs() >= 3, timeout=60)
    far = IntervalSchedule.objects.bulk_create([IntervalSchedule(every=2**31 - 1,
                                                                 period="days")])[0]  # fmt: skip
    break_a_good_row_while_beat_runs("bad later interval", interval=far)
    break_a_good_row_while_beat_runs("bad later last_run_at", last_run_at=FAR)
    seen = good_runs()
    wait_for(lambda: good_runs() >= seen + 5, timeout=30)

    assert beat.poll() is None, "beat died"
    dues = wait_for(lambda: one_message_per_run(queue), timeout=10)
    steps = [round(b - a, 3) for a, b in itertools.pairwise(dues)]
    assert all(step >= 1 - 0.01 for step in steps), steps  # one run per due time, no burst
    logged = skip_lines(beat.log_path)
    expected = {*broken_names(bad), "bad later interval", "bad later last_run_at"} - ALERT_ONLY
    assert logged == dict.fromkeys(expected, 1), "each bad row is logged exactly once"
    log = Path(beat.log_path).read_text(errors="replace")
    assert "unexpected error in a tick" not in log
    sent_odd = Run.objects.filter(schedule_name__startswith="odd ").values_list("schedule_name")
    assert len(set(sent_odd)) == len([name for name in bad if name.startswith("odd ")])

    check_alerts()
    broken = (
        Incident.objects.open().filter(kind=Kind.BROKEN_SCHEDULE).values_list("key", flat=True)
    )
    assert set(broken) == expected | ALERT_ONLY
