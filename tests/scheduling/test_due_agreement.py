"""One answer to "when is this schedule due?": beat, the admin preview, `schedules next`,
/jobs/, the alert sweep and the dashboard agree, for every kind of schedule, around both
clock changes of 2027, in zones with and without daylight saving (and a 30-minute one).

The answer is Schedule.due_at (preview.due_at). A missed run is alerted at its due time
plus grace: not a second before, and not later.
"""

import datetime as dt
import json
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)

from apps.ops import heartbeat
from apps.ops.alerts import check_alerts
from apps.ops.models import Incident, Kind
from apps.scheduling.models import Schedule, ScheduleOptions
from apps.scheduling.preview import format_moment
from tests.helpers import make_superuser

from .beat_helpers import make_scheduler

pytestmark = pytest.mark.django_db

UTC = dt.UTC
YEAR = 2027
JOB = "apps.demo.tasks.countdown"  # no default schedule runs it: /jobs/ shows ours
NAME = "agreement"
GRACE = 120
ZONES = {  # zone: (latitude, longitude) of a place in it, for the solar schedule
    "Europe/Berlin": (52.52, 13.405),
    "America/New_York": (40.71, -74.01),
    "Australia/Sydney": (-33.87, 151.21),
    "Asia/Kolkata": (28.61, 77.21),
    "Australia/Lord_Howe": (-31.55, 159.08),
}
KINDS = ("daily crontab", "hourly crontab", "interval", "solar", "clocked")


def clock_changes(zone: ZoneInfo) -> list[tuple[str, dt.datetime, dt.timedelta]]:
    """(spring forward | fall back, instant, shift) of each clock change in YEAR; a zone
    without daylight saving gets Berlin's two dates, with no shift."""
    changes, moment = [], dt.datetime(YEAR, 1, 1, tzinfo=UTC)
    offset = moment.astimezone(zone).utcoffset()
    while moment.year == YEAR:
        moment += dt.timedelta(minutes=15)
        new = moment.astimezone(zone).utcoffset()
        if new != offset:
            changes.append(
                ("spring forward" if new > offset else "fall back", moment, new - offset)
            )
            offset = new
    if not changes:
        none = dt.timedelta(0)
        return [("spring forward", dt.datetime(YEAR, 3, 28, 1, tzinfo=UTC), none),
                ("fall back", dt.datetime(YEAR, 10, 31, 1, tzinfo=UTC), none)]  # fmt: skip
    return changes


CASES = [
    pytest.param(zone, change, kind, id=f"{zone}-{change}-{kind}")
    for zone in ZONES
    for change in ("spring forward", "fall back")
    for kind in KINDS
]


def make_agreement_schedule(zone_name: str, change: str, kind: str) -> Schedule:
    """A schedule of `kind` whose next run falls at (or just around) the clock change."""
    zone = ZoneInfo(zone_name)
    [(_, instant, shift)] = [c for c in clock_changes(zone) if c[0] == change]
    # The middle of the wall-clock times the change skips (or repeats).
    wall = instant.astimezone(zone).replace(tzinfo=None)
    middle = (wall - shift if change == "spring forward" else wall) + abs(shift) / 2
    fields = {"last_run_at": instant - dt.timedelta(hours=1)}
    if kind == "daily crontab":
        fields["crontab"] = make_cron(f"{middle.minute} {middle.hour} * * *", zone_name)
    elif kind == "hourly crontab":  # runs in every real hour, the repeated one twice
        fields["crontab"] = make_cron(f"{middle.minute} * * * *", zone_name)
        fields["last_run_at"] = instant - dt.timedelta(minutes=1)
    elif kind == "interval":
        fields["interval"] = IntervalSchedule.objects.create(every=1, period="hours")
        fields["last_run_at"] = instant - dt.timedelta(minutes=30)
    elif kind == "solar":
        latitude, longitude = ZONES[zone_name]
        fields["solar"] = SolarSchedule.objects.create(event="sunrise", latitude=latitude,
                                                       longitude=longitude)  # fmt: skip
    else:
        at = instant + dt.timedelta(minutes=15)
        fields = {"clocked": ClockedSchedule.objects.create(clocked_time=at), "one_off": True}
    task = PeriodicTask.objects.create(name=NAME, task=JOB, kwargs=json.dumps({"seconds": 1}),
                                       **fields)  # fmt: skip
    ScheduleOptions.objects.create(periodic_task=task, grace_seconds=GRACE)
    return Schedule.objects.with_schedules().get(pk=task.pk)


def make_cron(expression: str, zone: str) -> CrontabSchedule:
    minute, hour, day_of_month, month_of_year, day_of_week = expression.split()
    return CrontabSchedule.objects.create(minute=minute, hour=hour, day_of_month=day_of_month,
                                          month_of_year=month_of_year, day_of_week=day_of_week,
                                          timezone=zone)  # fmt: skip


# What each entry point says --------------------------------------------------------------


def beat_says(name: str) -> dt.datetime:
    """Where beat put the schedule on its heap, checked against the entry's own is_due a
    second before and at that time."""
    beat = make_scheduler()
    try:
        [when] = [when for when, seq, n in beat._due if n == name and beat._heap_seq[n] == seq]
        due = dt.datetime.fromtimestamp(when, UTC)
        entry = beat.schedule[name]
        entry.schedule.nowfun = lambda: due - dt.timedelta(seconds=1)
        assert not entry.is_due().is_due
        entry.schedule.nowfun = lambda: due
        assert entry.is_due().is_due
        return due
    finally:
        beat.close()


def shown(due: dt.datetime, zone) -> str:
    return format_moment(due, zone, seconds=bool(due.second or due.microsecond))


def admin_preview_shows(client, task: Schedule, due: dt.datetime, zone) -> bool:
    page = client.get(f"/admin/django_celery_beat/periodictask/{task.pk}/change/")
    first_row = page.content.decode().split('class="switchyard-next-run"><td>', 1)[1]
    return first_row.startswith(shown(due, zone))


def cli_next_shows(task: Schedule, due: dt.datetime, zone) -> bool:
    out = StringIO()
    call_command("schedules", "next", task.name, "-n", "1", stdout=out)
    return out.getvalue().splitlines()[1].startswith(shown(due, zone))


def jobs_page_shows(client, due: dt.datetime) -> bool:
    page = client.get("/jobs/").content.decode()
    return f'title="{timezone.localtime(due).isoformat()}"' in page


def missed_incident(now: dt.datetime) -> Incident | None:
    check_alerts(now)
    return Incident.objects.open().filter(kind=Kind.MISSED_RUN, key=NAME).first()


# The tests ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("zone", "change", "kind"), CASES)
def test_every_entry_point_gives_the_same_due_time(client, zone, change, kind):
    client.force_login(make_superuser())
    task = make_agreement_schedule(zone, change, kind)
    due = task.due_at()
    own_zone = ZoneInfo(zone) if kind.endswith("crontab") else UTC
    assert beat_says(NAME) == due
    assert task.next_run_at() == due
    assert admin_preview_shows(client, task, due, own_zone)
    assert cli_next_shows(task, due, own_zone)
    assert jobs_page_shows(client, due)


@pytest.mark.parametrize(("zone", "change", "kind"), CASES)
def test_a_missed_run_is_alerted_at_its_due_time_plus_grace_and_shown_on_the_dashboard(
    client, zone, change, kind
):
    heartbeat.record("beat")
    client.force_login(make_superuser())
    due = make_agreement_schedule(zone, change, kind).due_at()
    grace = dt.timedelta(seconds=GRACE)
    assert missed_incident(due + grace - dt.timedelta(seconds=1)) is None
    incident = missed_incident(due + grace + dt.timedelta(seconds=1))
    assert incident is not None
    assert incident.occurrence == timezone.localtime(due).isoformat()
    dashboard = client.get("/dashboard/missed/").content.decode()
    assert f"It was due at {timezone.localtime(due):%Y-%m-%d %H:%M:%S %Z}" in dashboard


def test_the_berlin_spring_forward_crontab_is_due_when_the_gap_ends_everywhere():
    """The measured case of the issue: 02:30 on 2027-03-28 runs at 03:00 CEST."""
    task = make_agreement_schedule("Europe/Berlin", "spring forward", "daily crontab")
    due = task.due_at().astimezone(ZoneInfo("Europe/Berlin"))
    assert due.strftime("%Y-%m-%d %H:%M %Z") == "2027-03-28 03:00 CEST"
    assert beat_says(NAME) == due
