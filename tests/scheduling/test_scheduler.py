"""Switchyard's beat scheduler, in this process: what it sends, what it writes down, and
how it follows edits. Messages go to a queue nobody consumes, so they can be counted."""

import json
import time
from datetime import datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, PeriodicTask, PeriodicTasks

from apps.jobs.models import Run, Source, State
from apps.ops.models import Heartbeat
from apps.scheduling.models import Overlap, ScheduleOptions
from apps.scheduling.schedulers import run_id
from project import celery_app
from tests.helpers import make_run

from .beat_helpers import (
    make_lease,
    make_queue_name,
    make_schedule,
    make_scheduler,
    queued_messages,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def queue() -> str:
    return make_queue_name()


@pytest.fixture
def scheduler():
    made = []

    def make(**kw):
        made.append(make_scheduler(**kw))
        return made[-1]

    yield make
    for beat in made:
        beat.close()


def sent_schedules(queue: str) -> list[str]:
    return [message["headers"]["periodic_task_name"] for message in queued_messages(queue)]


# Sending ------------------------------------------------------------------------------


def test_it_sends_each_due_schedule_once_and_none_early(queue, scheduler):
    for name in ("a", "b", "c"):
        make_schedule(name, due_in=-1, queue=queue)
    make_schedule("later", due_in=30, queue=queue)
    beat = scheduler()
    beat.tick()
    beat.tick()
    assert sorted(sent_schedules(queue)) == ["a", "b", "c"]


def test_a_row_whose_headers_name_another_task_is_skipped_and_the_others_are_sent(
    queue, scheduler
):
    """Written straight into the table: its message would run `mul` (or reuse another
    run's task id); beat skips it as broken instead."""
    make_schedule("hijack", due_in=-1, queue=queue,
                  headers=json.dumps({"task": "apps.demo.tasks.mul", "id": "x"}))  # fmt: skip
    make_schedule("good", due_in=-1, queue=queue)
    beat = scheduler()
    beat.tick()
    beat.tick()
    assert sent_schedules(queue) == ["good"]
    assert all(m["headers"]["task"] == "apps.demo.tasks.add" for m in queued_messages(queue))


def test_the_task_id_follows_from_the_schedule_and_the_run_before(queue, scheduler):
    task = make_schedule("a", due_in=-1, queue=queue)
    scheduler().tick()
    [message] = queued_messages(queue)
    assert message["headers"]["id"] == run_id("a", task.last_run_at)
    assert message["headers"]["switchyard_due"] == (
        (task.last_run_at + timedelta(seconds=60)).isoformat()
    )


def test_a_sent_run_is_recorded_as_queued_for_its_schedule(queue, scheduler):
    make_schedule("a", due_in=-1, queue=queue)
    scheduler().tick()
    run = Run.objects.get(schedule_name="a")
    assert (run.state, run.source, run.job_name) == (
        State.QUEUED, Source.SCHEDULE, "apps.demo.tasks.add"
    )  # fmt: skip
    assert run.parameters == {"x": 1, "y": 2}
    assert run.queue == queue


def test_an_interval_schedule_keeps_its_phase(queue, scheduler):
    task = make_schedule("a", due_in=-1, queue=queue)
    due = task.last_run_at + timedelta(seconds=60)
    scheduler().tick()
    task.refresh_from_db()
    assert (task.last_run_at, task.total_run_count) == (due, 1)


def test_a_schedule_late_by_many_periods_runs_once(queue, scheduler):
    task = make_schedule("a", due_in=-600, queue=queue)
    beat = scheduler()
    beat.tick()
    beat.tick()
    assert sent_schedules(queue) == ["a"]
    task.refresh_from_db()
    assert task.last_run_at > timezone.now() - timedelta(seconds=10)


def test_a_crontab_schedule_runs_once_when_due(queue, scheduler):
    every_minute, _ = CrontabSchedule.objects.get_or_create(minute="*", hour="*")
    PeriodicTask.objects.create(
        name="cron", task="apps.demo.tasks.add", crontab=every_minute, queue=queue,
        kwargs='{"x": 1, "y": 1}', last_run_at=timezone.now() - timedelta(minutes=2),
    )  # fmt: skip
    beat = scheduler()
    beat.tick()
    beat.tick()
    assert sent_schedules(queue) == ["cron"]


def without(timed: tuple[str, ...], queries: list[str]) -> list[str]:
    """The statements left once timed writes, and the savepoints that held only them, go."""
    left: list[str] = []
    for sql in queries:
        if sql in timed:
            continue
        if sql == "RELEASE" and left and left[-1] == "SAVEPOINT":
            left.pop()  # a savepoint around a timed write only
            continue
        left.append(sql)
    return left


def test_a_tick_costs_the_same_few_queries_whether_it_sends_3_runs_or_30(queue, scheduler):
    def queries_for(count: int, prefix: str) -> list[str]:
        tasks = [make_schedule(f"{prefix}{i}", due_in=3, queue=queue) for i in range(count)]
        beat = scheduler()
        beat.tick()  # takes the lease; nothing due yet
        due = max(task.last_run_at for task in tasks) + timedelta(seconds=60)
        time.sleep(max(0, (due - timezone.now()).total_seconds()))
        with CaptureQueriesContext(connection) as captured:
            beat.tick()
        beat.close()
        return [query["sql"].split()[0] for query in captured]

    few, many = queries_for(3, "few"), queries_for(30, "many")
    assert len(sent_schedules(queue)) == 33
    # The same statements for 30 runs as for 3. Writes on a timer (the heartbeat, a save
    # of run times) may fall into either tick, so those are bounded, not matched.
    timed = ("UPDATE", "WITH")
    assert without(timed, few) == without(timed, many)
    assert many.count("INSERT") == 1  # the run records
    for queries in (few, many):  # runs marked queued, run times, a heartbeat; twice at most
        assert sum(queries.count(kind) for kind in timed) <= 6, queries


def test_beat_sends_no_task_sent_events_unless_told_to(scheduler, settings, monkeypatch):
    monkeypatch.setattr(celery_app.conf, "task_send_sent_event", True)  # CELERY_TASK_EVENTS
    beat = scheduler()
    assert not celery_app.conf.task_send_sent_event  # the run record says it already
    beat.close()
    assert celery_app.conf.task_send_sent_event
    settings.BEAT_TASK_SENT_EVENTS = True
    scheduler()
    assert celery_app.conf.task_send_sent_event


def test_the_leader_records_a_heartbeat_naming_itself(scheduler):
    beat = scheduler()
    beat.tick()
    assert Heartbeat.objects.get(name="beat").detail == {"leader": beat.lease.owner}


# Failover ---------------------------------------------------------------------------------


def test_a_run_the_dead_leader_sent_is_not_sent_again(queue, scheduler, monkeypatch):
    task = make_schedule("a", due_in=-1, queue=queue)
    key = f"test:beat:{queue}"
    dying = scheduler(lease=make_lease(key))
    monkeypatch.setattr(dying, "_save_run_times", lambda: None)  # killed before recording
    dying.tick()
    assert sent_schedules(queue) == ["a"]
    dying.lease.release()  # its lease lapses
    successor = scheduler(lease=make_lease(key))
    successor.tick()
    assert sent_schedules(queue) == ["a"]
    task.refresh_from_db()
    due = queued_messages(queue)[0]["headers"]["switchyard_due"]
    assert task.last_run_at == datetime.fromisoformat(due)


def test_a_leader_that_resumes_after_a_newer_one_took_over_sends_nothing(queue, scheduler):
    """The old leader passed its lease check, then stalled (a partition, a long pause, a
    slow query) past its lease while a newer leader took over and sent the due run: the
    old leader's send is refused at send time (the fenced lease), not left to luck."""
    from apps.scheduling.lease import redis_client

    key = f"test:beat:{queue}"
    old = scheduler(lease=make_lease(key, ttl=2))
    old.tick()  # takes the lease: it has led for longer than a lease by the time "a" is due
    time.sleep(max(0, old._look_up_until - time.time()) + 0.1)
    make_schedule("a", due_in=-0.05, queue=queue)
    old._refresh()
    assert old._lead()
    batch = old._pop_due(time.time())
    assert [entry.name for _, entry in batch] == ["a"]
    redis_client().delete(key)  # the old leader stalls here; its lease lapses
    newer = scheduler(lease=make_lease(key, ttl=2))
    newer.tick()
    assert sent_schedules(queue) == ["a"]
    old._dispatch(batch)  # it resumes where it stalled
    assert sent_schedules(queue) == ["a"]
    assert not old._leading


def test_a_run_recorded_but_not_published_is_left_to_the_sweeper(queue, scheduler):
    task = make_schedule("a", due_in=-1, queue=queue)
    make_run(task_id=run_id("a", task.last_run_at), state=State.PENDING_SEND, schedule_name="a")
    scheduler().tick()
    assert sent_schedules(queue) == []
    task.refresh_from_db()
    assert task.total_run_count == 1


def test_a_standby_sends_nothing_while_the_leader_holds_the_lease(queue, scheduler):
    make_schedule("a", due_in=-1, queue=queue)
    key = f"test:beat:{queue}"
    assert make_lease(key).hold()
    scheduler(lease=make_lease(key)).tick()
    assert sent_schedules(queue) == []


def test_a_standby_takes_over_when_the_leaders_lease_lapses(queue, scheduler):
    make_schedule("a", due_in=-1, queue=queue)
    key = f"test:beat:{queue}"
    assert make_lease(key, ttl=1).hold()  # and never renewed: the leader died
    standby = scheduler(lease=make_lease(key, ttl=1))
    standby.tick()
    assert sent_schedules(queue) == []
    deadline = time.monotonic() + 5
    while not sent_schedules(queue) and time.monotonic() < deadline:
        time.sleep(standby.tick())
    assert sent_schedules(queue) == ["a"]


# Following edits ---------------------------------------------------------------------------


def test_an_edit_reaches_a_running_scheduler_and_only_that_entry_is_rebuilt(scheduler):
    a = make_schedule("a", due_in=30)
    make_schedule("b", due_in=30)
    beat = scheduler()
    beat.tick()
    before = dict(beat.schedule)
    a.kwargs = json.dumps({"x": 5, "y": 5})
    a.save()
    beat.tick()
    assert beat.schedule["a"].kwargs == {"x": 5, "y": 5}
    assert beat.schedule["b"] is before["b"]


def test_a_changed_interval_takes_effect(queue, scheduler):
    task = make_schedule("a", every=3600, due_in=1800, queue=queue)
    beat = scheduler()
    beat.tick()
    task.interval = make_schedule("faster", every=60, due_in=30).interval
    task.save()
    beat.tick()
    assert sent_schedules(queue) == ["a"]  # last run 1800 s ago, now every 60 s: due


def test_a_deleted_schedule_stops(queue, scheduler):
    task = make_schedule("a", due_in=3, queue=queue)
    beat = scheduler()
    beat.tick()
    task.delete()
    time.sleep(3)
    beat.tick()
    assert "a" not in beat.schedule
    assert sent_schedules(queue) == []


def test_a_schedule_disabled_by_the_admin_bulk_action_stops(queue, scheduler):
    make_schedule("a", due_in=3, queue=queue)
    beat = scheduler()
    beat.tick()
    PeriodicTask.objects.filter(name="a").update(enabled=False, last_run_at=None)
    PeriodicTasks.update_changed()
    time.sleep(3)
    beat.tick()
    assert sent_schedules(queue) == []


def test_disabling_and_enabling_again_does_not_fire_the_missed_runs(queue, scheduler):
    task = make_schedule("a", every=3, due_in=3, queue=queue)
    beat = scheduler()
    beat.tick()
    task.enabled = False
    task.save()
    beat.tick()
    time.sleep(3.5)  # it would have been due once
    task.enabled = True
    task.save()
    beat.tick()
    beat.tick()
    assert sent_schedules(queue) == []  # next due a period after it was enabled


def test_a_bulk_update_nobody_announced_is_found_by_the_periodic_full_check(scheduler):
    make_schedule("a", due_in=30)
    beat = scheduler()
    beat.tick()
    PeriodicTask.objects.filter(name="a").update(kwargs='{"x": 7, "y": 7}')
    beat.tick()
    assert beat.schedule["a"].kwargs == {"x": 1, "y": 2}  # not announced: not seen yet
    beat.full_check_every = 0
    beat.tick()
    assert beat.schedule["a"].kwargs == {"x": 7, "y": 7}


def test_an_overlap_policy_set_on_its_own_reaches_beat(scheduler):
    task = make_schedule("a", due_in=30)
    beat = scheduler()
    beat.tick()
    assert not beat.schedule["a"].skip_overlap
    ScheduleOptions.objects.create(periodic_task=task, overlap=Overlap.SKIP)
    beat.tick()
    assert beat.schedule["a"].skip_overlap


def test_beat_fires_a_crontab_by_the_dst_rules_of_the_preview():
    """On Berlin's fall-back day an hourly job runs in the repeated hour too."""
    from zoneinfo import ZoneInfo

    from apps.scheduling.preview import DstSafeCrontab, next_run_after
    from apps.scheduling.schedulers import SwitchyardEntry

    berlin = ZoneInfo("Europe/Berlin")
    cron = CrontabSchedule.objects.create(minute="0", hour="*", timezone=berlin)
    model = PeriodicTask.objects.create(name="hourly", task="apps.demo.tasks.add", crontab=cron)
    entry = SwitchyardEntry(model, app=celery_app)
    assert isinstance(entry.schedule, DstSafeCrontab)
    first_two = datetime(2026, 10, 25, 0, 0, tzinfo=ZoneInfo("UTC"))  # 02:00 CEST
    following = next_run_after(model.schedule, first_two)
    assert following - first_two == timedelta(hours=1)  # 02:00 CET, one real hour later
    now = first_two + timedelta(minutes=30)
    entry.schedule.nowfun = lambda: now
    remaining = entry.schedule.remaining_estimate(first_two)
    assert now + remaining == following


# Schedules beat cannot compute ---------------------------------------------------------


def skip_lines(caplog, name: str) -> int:
    return sum(f"skipping schedule {name!r}" in r.getMessage() for r in caplog.records)


def test_a_schedule_that_overflows_past_the_bounds_check_is_skipped_once_and_others_run(
    queue, scheduler, monkeypatch, caplog
):
    from django_celery_beat.models import IntervalSchedule

    from apps.scheduling import bounds

    monkeypatch.setattr(bounds, "beat_problem", lambda task: None)  # a failure not foreseen
    far = IntervalSchedule.objects.bulk_create([IntervalSchedule(every=3000000, period="days")])
    PeriodicTask.objects.bulk_create([PeriodicTask(name="far", task="apps.demo.tasks.add",
                                                   interval=far[0], queue=queue)])  # fmt: skip
    make_schedule("good", due_in=-1, queue=queue)
    beat = scheduler()
    for _ in range(3):
        beat.tick()
    assert sent_schedules(queue) == ["good"]
    assert "far" in beat.broken and "far" not in beat.schedule
    assert skip_lines(caplog, "far") == 1


@pytest.mark.parametrize(("args", "kwargs"), [
    ("[1e309, 2]", "{}"), ("[NaN, 2]", "{}"), ("[]", '{"x": -Infinity, "y": 2}'),
    ('["\\ud800", 2]', "{}"), ("[]", '{"x": {"\\udfff": 1}, "y": 2}'),
])  # fmt: skip
def test_a_row_whose_arguments_no_run_record_can_store_is_skipped_once_and_others_run(
    queue, scheduler, caplog, args, kwargs
):
    """Written straight into the table. Beat sent it every time with no run record (the
    INSERT OR IGNORE of the runs dropped the row SQLite's JSON check refused) and no log
    line; now it is skipped as broken, said once, and nothing of it is sent."""
    make_schedule("bad", due_in=-1, queue=queue, task="apps.demo.tasks.mul",
                  args=args, kwargs=kwargs)  # fmt: skip
    make_schedule("good", due_in=-1, queue=queue)
    beat = scheduler()
    for _ in range(3):
        beat.tick()
    assert sent_schedules(queue) == ["good"]
    assert "bad" in beat.broken and "bad" not in beat.schedule
    assert skip_lines(caplog, "bad") == 1
    assert list(Run.objects.values_list("schedule_name", flat=True)) == ["good"]


def test_an_entry_whose_due_check_raises_is_skipped_alone_when_it_falls_due(
    queue, scheduler, monkeypatch, caplog
):
    from apps.scheduling.schedulers import SwitchyardEntry

    odd = make_schedule("odd", due_in=-1, queue=queue, start_time=timezone.now())
    make_schedule("good", due_in=-1, queue=queue)
    original = SwitchyardEntry.is_due

    def is_due(entry):
        if entry.name == "odd":
            raise OverflowError("date value out of range")
        return original(entry)

    monkeypatch.setattr(SwitchyardEntry, "is_due", is_due)
    beat = scheduler()
    for _ in range(3):
        beat.tick()
    assert sent_schedules(queue) == ["good"]
    assert skip_lines(caplog, "odd") == 1  # logged once, not at every check
    assert odd.name in beat.broken
