"""Alert emails: failed runs, missed schedules, beat down; one per incident, recovery."""

import importlib
from datetime import timedelta

import pytest
from django.apps import apps as django_apps
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from apps.jobs.models import Source, State
from apps.ops import heartbeat
from apps.ops.alerts import check_alerts
from apps.ops.models import Incident, Kind
from apps.scheduling.models import ScheduleOptions
from tests.helpers import make_run

from .makers import make_finished_run, make_schedule

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def beat_alive():
    heartbeat.record("beat")


@pytest.fixture(autouse=True)
def no_built_in_daily_schedules():
    """The built-in daily schedules (prune at 03:30, sessions at 04:15) would be missed,
    and alerted, by a check an hour ahead run near those times: tests use their own."""
    daily = importlib.import_module("apps.scheduling.migrations.0002_default_schedules")
    PeriodicTask.objects.filter(name__in=[daily.PRUNE, daily.SESSIONS]).update(enabled=False)


def fail(job_name="apps.demo.tasks.add", at=None, **kw):
    at = at or timezone.now() - timedelta(seconds=30)
    return make_finished_run(job_name, state=State.FAILED, finished_at=at, **kw)


def succeed(job_name="apps.demo.tasks.add", at=None, **kw):
    return make_finished_run(
        job_name, finished_at=at or timezone.now() - timedelta(seconds=20), **kw
    )


def test_a_failed_run_emails_the_admins_once_with_the_job_title_and_a_link(mail):
    run = fail()
    check_alerts()
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["ops@example.com"]
    assert "Add two numbers failed" in message.subject
    assert run.get_absolute_url() in message.body
    incident = Incident.objects.get()
    assert (incident.kind, incident.key, incident.count) == (Kind.FAILED_RUN, run.job_name, 1)


def test_the_incident_keeps_a_path_and_only_the_email_says_site_url(mail, settings):
    settings.SITE_URL = "https://switchyard.example.com"
    run = fail()
    check_alerts()
    assert Incident.objects.get().link == run.get_absolute_url()
    assert f"https://switchyard.example.com{run.get_absolute_url()}" in mail.outbox[0].body


def test_running_the_sweep_again_does_not_report_the_same_failure_twice(mail):
    fail()
    check_alerts()
    check_alerts()
    assert len(mail.outbox) == 1
    assert Incident.objects.get().count == 1


def test_repeated_failures_count_up_on_the_incident_without_more_email(mail):
    now = timezone.now()
    fail(at=now - timedelta(seconds=50))
    check_alerts(now)
    for minute in range(1, 6):
        fail(at=now + timedelta(minutes=minute))
        check_alerts(now + timedelta(minutes=minute, seconds=30))
    assert len(mail.outbox) == 1
    assert Incident.objects.get().count == 6


def test_a_failure_after_the_minimum_interval_sends_one_reminder_with_the_count(mail, settings):
    settings.ALERT_MIN_INTERVAL_MINUTES = 60
    now = timezone.now()
    fail(at=now - timedelta(seconds=50))
    check_alerts(now)
    fail(at=now + timedelta(minutes=30))
    check_alerts(now + timedelta(minutes=31))
    fail(at=now + timedelta(minutes=61))
    check_alerts(now + timedelta(minutes=62))
    fail(at=now + timedelta(minutes=70))
    check_alerts(now + timedelta(minutes=71))
    subjects = [m.subject for m in mail.outbox]
    assert len(subjects) == 2
    assert "Still happening (3 times)" in subjects[1]


def test_a_success_after_a_failure_resolves_the_incident_and_sends_a_recovery_email(mail):
    now = timezone.now()
    fail(at=now - timedelta(seconds=50))
    check_alerts(now)
    succeed(at=now + timedelta(seconds=10))
    check_alerts(now + timedelta(seconds=30))
    assert [m.subject.split(":")[0] for m in mail.outbox] == [
        "[Switchyard] Add two numbers failed",
        "[Switchyard] Recovered",
    ]
    assert Incident.objects.get().resolved_at is not None


def test_a_success_before_the_failure_does_not_resolve_it(mail):
    now = timezone.now()
    succeed(at=now - timedelta(seconds=60))
    fail(at=now - timedelta(seconds=30))
    check_alerts(now)
    check_alerts(now + timedelta(seconds=10))
    assert Incident.objects.open().count() == 1
    assert len(mail.outbox) == 1


def test_a_job_flapping_every_minute_reopens_its_incident_without_new_email(mail):
    now = timezone.now()
    for minute in range(6):
        at = now + timedelta(minutes=minute)
        fail(at=at - timedelta(seconds=40))
        succeed(at=at - timedelta(seconds=20))
        check_alerts(at)
    assert len(mail.outbox) == 2  # the first failure and its recovery
    assert Incident.objects.count() == 1
    assert Incident.objects.get().count == 6


def test_failures_of_a_scheduled_run_go_to_the_schedules_recipients(mail):
    schedule = make_schedule("nightly add")
    ScheduleOptions.objects.create(periodic_task=schedule, alert_recipients="a@x.org, b@x.org")
    fail(schedule_name="nightly add", source=Source.SCHEDULE)
    check_alerts()
    assert mail.outbox[0].to == ["a@x.org", "b@x.org"]
    assert Incident.objects.get().schedule_name == "nightly add"


def test_retrying_runs_raise_no_alert_until_their_retries_are_exhausted(mail):
    make_run("apps.demo.tasks.flaky", state=State.RETRYING, started_at=timezone.now())
    check_alerts()
    assert mail.outbox == []


def test_without_admins_or_recipients_the_incident_is_still_recorded(mail, settings):
    settings.ADMINS = []
    fail()
    check_alerts()
    assert mail.outbox == []
    assert Incident.objects.open().count() == 1


# Missed schedules ---------------------------------------------------------------------


def test_a_schedule_that_did_not_run_past_its_grace_emails_its_recipients(mail):
    schedule = make_schedule("every minute", last_run_ago=timedelta(minutes=10))
    ScheduleOptions.objects.create(periodic_task=schedule, alert_recipients="sched@x.org")
    assert check_alerts()["missed"] == 1
    assert mail.outbox[0].to == ["sched@x.org"]
    assert "every minute missed its run" in mail.outbox[0].subject
    assert f"/admin/django_celery_beat/periodictask/{schedule.pk}/change/" in mail.outbox[0].body


def test_a_missed_schedule_is_emailed_once_however_often_the_sweep_sees_it(mail):
    make_schedule("every minute", last_run_ago=timedelta(minutes=10))
    for _ in range(3):
        check_alerts()
    assert len(mail.outbox) == 1
    assert Incident.objects.get(kind=Kind.MISSED_RUN).count == 1


def test_a_schedule_still_within_its_grace_period_has_not_missed(mail):
    schedule = make_schedule("every minute", last_run_ago=timedelta(minutes=3))
    ScheduleOptions.objects.create(periodic_task=schedule, grace_seconds=600)
    assert check_alerts()["missed"] == 0
    assert mail.outbox == []


def test_a_schedule_without_options_gets_five_minutes_of_grace(mail):
    make_schedule("every minute", last_run_ago=timedelta(minutes=5))  # due 4 min ago
    assert check_alerts()["missed"] == 0


def test_a_run_that_started_since_the_due_time_means_it_did_not_miss(mail):
    make_schedule("every minute", last_run_ago=timedelta(minutes=10))
    make_run(schedule_name="every minute", source=Source.SCHEDULE, state=State.SUCCEEDED,
             queued_at=timezone.now() - timedelta(minutes=8))  # fmt: skip
    assert check_alerts()["missed"] == 0


def test_a_run_queued_but_never_started_still_counts_as_missed(mail):
    make_schedule("every minute", last_run_ago=timedelta(minutes=10))
    make_run(schedule_name="every minute", source=Source.SCHEDULE, state=State.QUEUED,
             queued_at=timezone.now() - timedelta(minutes=8))  # fmt: skip
    assert check_alerts()["missed"] == 1


def test_disabled_schedules_and_unrecorded_housekeeping_never_miss(mail):
    make_schedule("off", last_run_ago=timedelta(hours=1), enabled=False)
    make_schedule("sweep", last_run_ago=timedelta(hours=1), task="apps.ops.tasks.check_alerts")
    assert check_alerts()["missed"] == 0


def test_a_missed_schedule_that_runs_again_sends_a_recovery_email(mail):
    make_schedule("every minute", last_run_ago=timedelta(minutes=10))
    check_alerts()
    make_run(schedule_name="every minute", source=Source.SCHEDULE, state=State.STARTED,
             queued_at=timezone.now(), started_at=timezone.now())  # fmt: skip
    PeriodicTask.objects.filter(name="every minute").update(last_run_at=timezone.now())
    check_alerts()
    assert [m.subject.split(":")[0] for m in mail.outbox] == [
        "[Switchyard] Schedule every minute missed its run",
        "[Switchyard] Recovered",
    ]
    assert Incident.objects.open().count() == 0


# Broken schedules (rows out of bounds, written straight to the tables) ----------------


def test_a_huge_grace_period_in_one_schedule_does_not_stop_the_others_missed_run_alerts(mail):
    from django.db import connection

    odd = make_schedule("odd grace", last_run_ago=timedelta(minutes=10))
    huge = 99999999999999 if connection.vendor == "sqlite" else 2**31 - 1
    ScheduleOptions.objects.bulk_create([ScheduleOptions(periodic_task=odd, grace_seconds=huge)])
    make_schedule("every minute", last_run_ago=timedelta(minutes=10))
    counts = check_alerts()
    assert (counts["missed"], counts["broken"]) == (1, 1)
    subjects = sorted(m.subject for m in mail.outbox)
    assert subjects == ["[Switchyard] Schedule every minute missed its run",
                        "[Switchyard] Schedule odd grace is broken: beat skips it"]  # fmt: skip
    assert "grace_seconds" in Incident.objects.get(kind=Kind.BROKEN_SCHEDULE).detail


def test_every_bad_row_is_one_broken_incident_and_the_good_schedule_still_alerts(mail):
    from tests.scheduling.bad_rows import broken_names, make_bad_rows

    bad = make_bad_rows("test-alerts")
    make_schedule("every minute", last_run_ago=timedelta(minutes=10))
    counts = check_alerts()
    keys = set(
        Incident.objects.open().filter(kind=Kind.BROKEN_SCHEDULE).values_list("key", flat=True)
    )
    assert keys == set(broken_names(bad))
    assert counts["broken"] == len(broken_names(bad))
    assert Incident.objects.open().filter(kind=Kind.MISSED_RUN, key="every minute").exists()
    check_alerts()  # seen again: no more mail
    assert len(mail.outbox) == len(broken_names(bad)) + 1  # and the missed run


def test_a_fixed_broken_schedule_resolves_its_incident(mail):
    from django_celery_beat.models import IntervalSchedule

    task = make_schedule("far", last_run_ago=timedelta(seconds=1))
    far = IntervalSchedule.objects.bulk_create([IntervalSchedule(every=3000000, period="days")])
    PeriodicTask.objects.filter(pk=task.pk).update(interval=far[0])
    check_alerts()
    assert Incident.objects.open().get().kind == Kind.BROKEN_SCHEDULE
    PeriodicTask.objects.filter(pk=task.pk).update(interval=IntervalSchedule.objects.get(
        every=1, period="minutes"))  # fmt: skip
    check_alerts()
    assert not Incident.objects.open().exists()


def test_a_schedule_name_with_a_line_break_still_gets_its_failure_emailed_on_one_line(mail):
    name = "nightly\r\nBcc: victim@example.com"
    task = make_schedule("placeholder")
    PeriodicTask.objects.filter(pk=task.pk).update(name=name)  # as an older version stored it
    ScheduleOptions.objects.bulk_create([ScheduleOptions(
        periodic_task_id=task.pk, alert_recipients="team@x.org, bad\r\n@x.org")])  # fmt: skip
    fail(schedule_name=name, source=Source.SCHEDULE)
    check_alerts()
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert (
        message.subject == "[Switchyard] Add two numbers failed (schedule nightly  Bcc: "
        "victim@example.com)"
    )
    assert message.to == ["team@x.org"]
    assert "victim@example.com" not in message.message().get("Bcc", "")


# Beat ---------------------------------------------------------------------------------


def test_beat_without_a_fresh_heartbeat_is_one_incident_and_one_email(mail, settings):
    settings.BEAT_HEARTBEAT_MAX_AGE = 60
    from apps.ops.models import Heartbeat

    Heartbeat.objects.filter(name="beat").update(seen_at=timezone.now() - timedelta(minutes=5))
    check_alerts()
    check_alerts()
    assert len(mail.outbox) == 1
    assert "Beat is not ticking" in mail.outbox[0].subject
    assert Incident.objects.open().get().kind == Kind.BEAT_DOWN


def test_while_beat_is_down_schedules_are_not_reported_one_by_one(mail):
    from apps.ops.models import Heartbeat

    Heartbeat.objects.all().delete()
    for n in range(3):
        make_schedule(f"schedule {n}", last_run_ago=timedelta(minutes=30))
    assert check_alerts()["missed"] == 0
    assert [i.kind for i in Incident.objects.open()] == [Kind.BEAT_DOWN]


def test_beat_ticking_again_resolves_its_incident_with_a_recovery_email(mail):
    from apps.ops.models import Heartbeat

    Heartbeat.objects.all().delete()
    check_alerts()
    heartbeat.record("beat")
    check_alerts()
    assert [m.subject for m in mail.outbox][1].startswith("[Switchyard] Recovered: Beat")
    assert not Incident.objects.open().exists()


def test_the_sweep_is_installed_as_a_default_schedule_every_minute():
    # What migrate ran (again, idempotent: a transactional test may have flushed the row).
    importlib.import_module("apps.ops.migrations.0004_default_alert_schedule").install(
        django_apps, None
    )
    task = PeriodicTask.objects.get(task="apps.ops.tasks.check_alerts")
    assert (task.enabled, task.interval.every, task.interval.period) == (True, 1, "minutes")


def test_crontab_schedules_are_checked_against_their_own_times(mail):
    from django_celery_beat.models import CrontabSchedule

    every_minute = CrontabSchedule.objects.create(minute="*", hour="*", timezone="UTC")
    make_schedule("cron minutely", last_run_ago=timedelta(minutes=10),
                  crontab=every_minute)  # fmt: skip
    next_hour = (timezone.now() + timedelta(hours=2)).hour
    daily = CrontabSchedule.objects.create(minute="0", hour=str(next_hour), timezone="UTC")
    make_schedule("cron daily", last_run_ago=timedelta(hours=1), crontab=daily)
    check_alerts()
    assert [i.key for i in Incident.objects.open()] == ["cron minutely"]


def test_a_burst_of_failures_of_one_job_is_one_email_and_one_count_each(mail):
    for seconds in range(30, 50):
        fail(at=timezone.now() - timedelta(seconds=seconds))
    assert check_alerts()["failures"] == 20
    assert len(mail.outbox) == 1
    assert Incident.objects.get().count == 20
