"""When a schedule fires next, and what it means in words.

`next_run_after(schedule, after)` is Switchyard's one answer to "when does this fire
next?" for Celery's own schedule objects (what `PeriodicTask.schedule` returns). The
admin preview and change list, `manage.py schedules next` and the scheduler use it.

Daylight saving time
--------------------
A crontab schedule fires at wall-clock times in its own zone (`CrontabSchedule.timezone`).
When that zone's clock jumps, Switchyard does what Vixie cron does (cron(8), "Daylight
Saving Time and other time changes"):

- A job at specific hours (hour field not every hour, e.g. `30 2 * * *`):
  on spring forward, a time inside the skipped hour runs once, at the first moment
  after the gap (02:30 runs at 03:00 in Europe/Berlin); on fall back, a time inside the
  repeated hour runs once, at its first occurrence.
- A job that runs every hour (hour field `*`, e.g. `0 * * * *` or `*/15 * * * *`) keeps
  to real time: the skipped hour has no runs and the repeated hour runs twice, once per
  occurrence, so an hourly job runs every real hour.

Celery 5.7's crontab, which django-celery-beat's TzAwareCrontab extends, differs
(tests/scheduling/test_dst.py pins it down): on fall back an hourly job skips the
repeated hour (02:00 CEST, then 03:00 CET: two real hours apart), and on spring forward
a 02:30 job runs at 03:30. So `next_run_after` lets Celery's crontab match the fields in
a frame without daylight saving (UTC wall clock) and maps each matching wall-clock time
to real instants by the rules above.

Interval, solar and clocked schedules are computed with Celery's own objects too:
interval arithmetic in UTC, `celery.schedules.solar`'s use of ephem (only the sun's
events, never the moment its search gave up: `next_solar_event`), and the clocked time.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from celery import schedules
from cron_descriptor import ExpressionDescriptor
from django.utils import timezone
from django_celery_beat.clockedschedule import clocked
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)
from django_celery_beat.tzcrontab import TzAwareCrontab

from . import bounds

UTC = dt.UTC
ALL_HOURS = frozenset(range(24))
MAX_STEPS = 10_000  # wall-clock matches examined before giving up (a cron always matches)
SOLAR_STEP = 1  # hours between samples of the sun's altitude on a day ephem finds no event
# ephem's event must be a crossing of the horizon in the event's direction within this
# many seconds of it (and after the search's start): near a pole its answers can be
# minutes early, or the event just found again.
SOLAR_CHECK_SECONDS = 60
# The sun this close (radians, 0.006 degrees) to the event's horizon is on it: a search
# that starts there starts at an event, and a crossing found within
# SOLAR_CHECK_SECONDS is that event again (at 52 N, the sun moves this far in about
# 1.5 s; near a pole, in a minute or more).
SOLAR_AT_HORIZON = 1e-4
NO_RUN_RECHECK = 86400.0  # s: beat looks again for a schedule with no run within its search


# Next run times ------------------------------------------------------------------------


def next_run_after(schedule: schedules.BaseSchedule, after: dt.datetime) -> dt.datetime | None:
    """The first time strictly after `after` at which `schedule` fires, in UTC; None if never.

    For an interval, `after` is the previous run (beat's `last_run_at`): the next run is
    one interval later. Crontabs follow the daylight saving rules in the module docstring.
    """
    # Aware datetimes sharing a tzinfo compare by wall clock, ignoring `fold`: compare
    # and return in UTC only.
    after = _aware(after).astimezone(UTC)
    if isinstance(schedule, schedules.crontab):
        return next_crontab_run(schedule, after)
    if isinstance(schedule, schedules.solar):
        return next_solar_event(schedule, after)
    if isinstance(schedule, clocked):
        moment = schedule.clocked_time.astimezone(UTC)
        return moment if moment > after else None
    if isinstance(schedule, schedules.schedule):
        return after + schedule.run_every
    raise TypeError(f"no next-run rule for {schedule!r}")


def next_runs(schedule: schedules.BaseSchedule, after: dt.datetime, count: int = 5) -> list:
    """The next `count` runs after `after` (fewer for a schedule that ends)."""
    runs: list[dt.datetime] = []
    moment: dt.datetime | None = after
    while len(runs) < count:
        moment = next_run_after(schedule, moment)
        if moment is None:
            break
        runs.append(moment)
    return runs


def next_crontab_run(cron: schedules.crontab, after: dt.datetime) -> dt.datetime:
    """The next run of a crontab (`after` in UTC), by the daylight saving rules above."""
    zone = cron.tz
    local = after.astimezone(zone)
    # In the first pass of a repeated hour, earlier wall-clock times of the second pass
    # are still ahead in real time: look back by the overlap.
    overlap = _repeat_overlap(local)
    wall = local.replace(tzinfo=None) - overlap
    horizon = local.replace(tzinfo=None) + overlap
    matcher = _wall_clock_crontab(cron)
    every_hour = frozenset(cron.hour) == ALL_HOURS
    best = None
    for _ in range(MAX_STEPS):
        wall = _next_wall_time(matcher, wall)
        for instant in wall_time_instants(wall, zone, every_hour=every_hour):
            instant = instant.astimezone(UTC)
            if instant > after and (best is None or instant < best):
                best = instant
        if best is not None and wall >= horizon:
            return best
    raise ValueError(f"{cron!r} has no run after {after.isoformat()}")


def wall_time_instants(wall: dt.datetime, zone, *, every_hour: bool) -> list[dt.datetime]:
    """The real instants at which a matching wall-clock time fires in `zone`."""
    first = wall.replace(tzinfo=zone, fold=0)
    second = wall.replace(tzinfo=zone, fold=1)
    if first.utcoffset() == second.utcoffset():
        return [first]
    if first.utcoffset() > second.utcoffset():  # the clock fell back: it happens twice
        return [first, second] if every_hour else [first]
    return [] if every_hour else [_gap_end(first, second, zone)]  # it never happens


def _repeat_overlap(local: dt.datetime) -> dt.timedelta:
    if local.fold:
        return dt.timedelta(0)
    second = local.replace(fold=1)
    return max(local.utcoffset() - second.utcoffset(), dt.timedelta(0))


def _gap_end(before_gap: dt.datetime, after_gap: dt.datetime, zone) -> dt.datetime:
    """The first moment after the clock jumped over a wall-clock time (bisection in UTC).

    `after_gap` (fold=1) reads the time with the new offset, so it is an instant before
    the jump; `before_gap` (fold=0) reads it with the old offset, an instant at or after.
    """
    new_offset = after_gap.utcoffset()
    low, high = after_gap.astimezone(UTC), before_gap.astimezone(UTC)
    while high - low > dt.timedelta(seconds=1):
        middle = low + dt.timedelta(seconds=(high - low).total_seconds() // 2)
        if middle.astimezone(zone).utcoffset() == new_offset:
            high = middle
        else:
            low = middle
    return high.astimezone(zone)


def _wall_clock_crontab(cron: schedules.crontab) -> TzAwareCrontab:
    """The same crontab fields, matched on a clock without daylight saving."""
    fields = (
        cron._orig_minute,
        cron._orig_hour,
        cron._orig_day_of_week,
        cron._orig_day_of_month,
        cron._orig_month_of_year,
    )
    if all(isinstance(field, str | int) for field in fields):
        return _cached_wall_clock_crontab(fields)  # parsing is most of the cost
    return TzAwareCrontab(*fields, tz=UTC)


@functools.lru_cache(maxsize=4096)
def _cached_wall_clock_crontab(fields: tuple) -> TzAwareCrontab:
    return TzAwareCrontab(*fields, tz=UTC)


def _next_wall_time(matcher: TzAwareCrontab, wall: dt.datetime) -> dt.datetime:
    """Celery's own answer to "the next matching minute after `wall`"."""
    start, delta, _now = matcher.remaining_delta(wall.replace(tzinfo=UTC))
    return (start + delta).replace(tzinfo=None)


def next_solar_event(sun: schedules.solar, after: dt.datetime) -> dt.datetime | None:
    """The first time strictly after `after` (UTC) at which the sun does `sun.event` where
    `sun` is; None if it does not within Celery's search (`max_search_days`, a year).

    Celery's solar asks ephem for the event day by day, skipping the days ephem says it
    does not happen (polar day or night: CircumpolarError); when the search ends without
    one it returns the time the search stopped, which beat would take for the event. Here
    that is None: no run, no made-up time. Near a pole ephem's one-day method finds no
    event on any day, though the sun does cross the horizon there (at 89.9 N it rises
    around 18 March): a day ephem refuses is searched by the sun's altitude instead.
    """
    ephem = sun.ephem
    cal = sun.cal.copy()
    start = ephem.Date(after.astimezone(UTC).replace(tzinfo=None))
    end = start + sun.max_search_days
    near = dt.timedelta(seconds=SOLAR_CHECK_SECONDS)
    at_horizon = sun.method != "next_transit" and (
        abs(_height(sun, cal, start)) < SOLAR_AT_HORIZON
    )
    while start < end:
        event = _ephem_event(sun, cal, start)
        if event is None:
            day_end = max(cal.next_antitransit(ephem.Sun(), start=start), start + ephem.hour)
            event = _horizon_crossing(sun, cal, start, min(day_end, end))
            if event is None:
                start = day_end
                continue
        moment = event.datetime().replace(tzinfo=UTC)
        if moment - after < near and at_horizon:
            # `after` was this crossing (the run just sent for it): near a pole, ephem's
            # answers for it, and the altitude's, can be seconds apart.
            start = ephem.Date(event + SOLAR_CHECK_SECONDS * ephem.second)
            continue
        if moment > after:
            return moment
        start = ephem.Date(start + ephem.minute)  # ephem may hand back the start itself
    return None


def _ephem_event(sun: schedules.solar, cal, start: float):
    """Celery's own answer (ephem's method for the event) after `start`; None when ephem
    finds none that day, or one that is not a crossing of the horizon after `start`.

    Near a pole ephem's answers can be minutes before the sun gets there (at 89.9 S, a
    burst of "sunrises" closing in on the real one), and a search that starts at the
    event just found may be handed that event again a second later: the sun must be on
    the near side of the horizon SOLAR_CHECK_SECONDS before the answer (or at `start`,
    if that is later) and on the far side as long after it.
    """
    kwargs = {"use_center": True} if sun.use_center else {}
    try:
        event = getattr(cal, sun.method)(sun.ephem.Sun(), start=start, **kwargs)
    except sun.ephem.CircumpolarError:
        return None
    if sun.method == "next_transit":
        return event
    window = SOLAR_CHECK_SECONDS * sun.ephem.second
    rising = sun.method == "next_rising"
    before = _height(sun, cal, max(start, event - window)) > 0
    after = _height(sun, cal, event + window) > 0
    return event if before != rising and after == rising else None


def _horizon_crossing(sun: schedules.solar, cal, start: float, end: float):
    """When the sun crosses the event's horizon (rising for dawn and sunrise, setting
    for sunset and dusk) between `start` and `end` (ephem dates), to the second; None
    if it does not. Sampled every SOLAR_STEP hours, then halved."""
    ephem = sun.ephem
    rising = sun.method == "next_rising"
    low, low_above = start, _height(sun, cal, start) > 0
    while low < end:
        high = ephem.Date(min(low + SOLAR_STEP * ephem.hour, end))
        high_above = _height(sun, cal, high) > 0
        if high_above == rising and low_above != rising:
            while high - low > ephem.second:
                middle = ephem.Date((low + high) / 2)
                if (_height(sun, cal, middle) > 0) == rising:
                    high = middle
                else:
                    low = middle
            return high
        low, low_above = high, high_above
    return None


def _height(sun: schedules.solar, cal, when: float) -> float:
    """How far (radians) the sun's centre, or upper limb for sunrise and sunset, is
    above the event's horizon at `when`."""
    cal.date = when
    body = sun.ephem.Sun(cal)
    return body.alt + (0.0 if sun.use_center else body.radius) - cal.horizon


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if timezone.is_aware(moment) else moment.replace(tzinfo=UTC)


class FiresByRule:
    """`is_due` and `remaining_estimate` from `next_run_after`, for a Celery schedule in
    beat: beat fires when the preview (and every other page) says it does."""

    def remaining_estimate(self, last_run_at: dt.datetime) -> dt.timedelta:
        return dt.timedelta(seconds=self._remaining(last_run_at))

    def is_due(self, last_run_at: dt.datetime) -> schedules.schedstate:
        """Due when next_run_after says; with no run ahead within the rule's search (a
        solar event that does not happen there for a year), not due, and asked again in
        NO_RUN_RECHECK seconds, as the search moves on."""
        remaining = self._remaining(last_run_at)
        if remaining > 0:
            return schedules.schedstate(False, remaining)
        return schedules.schedstate(True, max(self._remaining(self.now()), 0))

    def _remaining(self, after: dt.datetime) -> float:
        """Seconds until the next run after `after`; NO_RUN_RECHECK when there is none."""
        due = next_run_after(self, _aware(after))
        if due is None:
            return NO_RUN_RECHECK
        return (due - self.now().astimezone(UTC)).total_seconds()


class DstSafeCrontab(FiresByRule, TzAwareCrontab):
    """django-celery-beat's crontab with the daylight saving rules above, for beat.

    `is_due` and `remaining_estimate` come from `next_crontab_run`; field parsing, the
    zone and pickling are TzAwareCrontab's. Build one with `DstSafeCrontab.of(cron)`.
    """

    @classmethod
    def of(cls, cron: schedules.crontab) -> DstSafeCrontab:
        return cls(cron._orig_minute, cron._orig_hour, cron._orig_day_of_week,
                   cron._orig_day_of_month, cron._orig_month_of_year, tz=cron.tz)  # fmt: skip


class RuleSolar(FiresByRule, schedules.solar):
    """Celery's solar schedule, due when `next_run_after` says (one answer for beat and
    the pages). Build one with `RuleSolar.of(sun)`."""

    @classmethod
    def of(cls, sun: schedules.solar) -> RuleSolar:
        return cls(sun.event, sun.lat, sun.lon, nowfun=sun.nowfun, app=sun._app)

    def __reduce__(self):
        return (self.__class__, (self.event, self.lat, self.lon))


def by_rule(schedule: schedules.BaseSchedule) -> schedules.BaseSchedule:
    """The schedule beat should hold: one whose due time is `next_run_after`'s."""
    if isinstance(schedule, FiresByRule):
        return schedule
    if isinstance(schedule, schedules.crontab):
        return DstSafeCrontab.of(schedule)
    if isinstance(schedule, schedules.solar):
        return RuleSolar.of(schedule)
    return schedule  # intervals and clocked: Celery's arithmetic is already the rule's


# A periodic task's upcoming runs, as beat reckons them ------------------------------------


def due_at(task: PeriodicTask, now: dt.datetime) -> dt.datetime | None:
    """When beat sends this task next, by beat's own rules: THE answer to "when is this
    schedule due?", asked by beat's heap, the admin preview, `manage.py schedules next`,
    /jobs/, and the alert sweep (through `Schedule.due_at` / `next_run_at`).

    Before `now` when it is overdue (beat sends it at once); None when it never runs
    again (disabled, a spent one-off, a clocked time passed by its run, past `expires`).
    Not before `start_time`; a run due before the row was last changed is due when it was
    changed (beat sends it as soon as it sees the change).
    """
    if not task.enabled or task.scheduler is None or (task.one_off and task.total_run_count):
        return None
    schedule = task.scheduler.schedule
    if isinstance(schedule, clocked):  # beat's clocked ignores the last run
        due = schedule.clocked_time.astimezone(UTC)
    else:
        due = next_run_after(schedule, counts_from(task, now))
    if due is None:
        return None
    if task.start_time and task.start_time > now:
        due = max(due, task.start_time.astimezone(UTC))
    elif task.date_changed:
        due = max(due, min(task.date_changed, now).astimezone(UTC))
    if task.expires and due >= task.expires:
        return None
    return due


def counts_from(task: PeriodicTask, now: dt.datetime) -> dt.datetime:
    """The moment beat counts the next run from (django-celery-beat's ModelEntry): the last
    run; for a task never run, when it was last changed, or 30 years before that if it has
    a start time (so that it runs as soon as it starts)."""
    if task.last_run_at:
        return task.last_run_at
    changed = task.date_changed or now
    return changed - dt.timedelta(days=365 * 30) if task.start_time else changed


def upcoming_runs(task: PeriodicTask, now: dt.datetime, count: int = 5) -> list[dt.datetime]:
    """When beat will send this task next (`due_at`, shown as `now` when overdue), and
    after; [] if it never runs again."""
    due = due_at(task, now)
    if due is None:
        return []
    runs = [max(due, now)]
    if not task.one_off:
        runs += next_runs(task.scheduler.schedule, runs[0], count - 1)
    if task.expires:
        runs = [run for run in runs if run < task.expires]
    return runs[:count]


def schedule_problem(task: PeriodicTask, now: dt.datetime) -> str | None:
    """Why beat skips this stored schedule ("broken"), or None if it can run.

    The one answer for beat's log, the admin, the dashboard's incident and the alert
    sweep: a value out of bounds (bounds.row_problem), or a next run that cannot be
    computed (a crontab field or time zone Celery cannot read, ...).
    """
    try:
        problem = bounds.row_problem(task)
        if problem is None and task.enabled:
            upcoming_runs(task, now, 1)
        return problem
    except Exception as error:  # whatever a stored row holds, the answer is a sentence
        return f"its next run cannot be computed: {type(error).__name__}: {error}"


def safe_upcoming_runs(task: PeriodicTask, now: dt.datetime, count: int = 5) -> list | None:
    """upcoming_runs for pages that list schedules: None for a broken schedule."""
    if schedule_problem(task, now):
        return None
    try:
        return upcoming_runs(task, now, count)
    except Exception:
        return None


# Words --------------------------------------------------------------------------------


def describe(task_or_schedule) -> str:
    """A schedule in plain words: 'every 10 minutes', 'At 02:30 (Europe/Berlin)'."""
    try:
        return _describe(task_or_schedule)
    except Exception:  # a row written by hand: say so rather than fail the page
        return "unreadable schedule"


def _describe(task_or_schedule) -> str:
    schedule = getattr(task_or_schedule, "scheduler", task_or_schedule)
    if isinstance(schedule, IntervalSchedule):
        return str(schedule)
    if isinstance(schedule, CrontabSchedule):
        return f"{describe_cron(cron_expression(schedule))} ({schedule.timezone})"
    if isinstance(schedule, SolarSchedule):
        where = f"latitude {schedule.latitude}, longitude {schedule.longitude}"
        return f"At {schedule.get_event_display().lower()}, {where} (UTC times)"
    if isinstance(schedule, ClockedSchedule):
        return f"Once, at {format_moment(schedule.clocked_time, timezone.get_current_timezone())}"
    return "no schedule"


def cron_expression(cron: CrontabSchedule) -> str:
    fields = (cron.minute, cron.hour, cron.day_of_month, cron.month_of_year, cron.day_of_week)
    return " ".join(str(field).replace(" ", "") or "*" for field in fields)


def describe_cron(expression: str) -> str:
    try:
        return ExpressionDescriptor(expression, use_24hour_time_format=True).get_description()
    except Exception:  # cron-descriptor raises several types; the expression still reads
        return expression


def schedule_zone(task_or_schedule) -> ZoneInfo | None:
    """The schedule's own time zone: only crontabs have one."""
    schedule = getattr(task_or_schedule, "scheduler", task_or_schedule)
    if isinstance(schedule, CrontabSchedule):
        zone = schedule.timezone
        return zone if isinstance(zone, dt.tzinfo) else ZoneInfo(str(zone))
    return None


def format_moment(moment: dt.datetime, zone, seconds: bool = False) -> str:
    """'Sun 2026-03-29 03:00 CEST (+02:00)' in the given zone (with seconds: 03:00:15)."""
    local = moment.astimezone(zone)
    offset = local.strftime("%z")
    clock = f"{local:%H:%M:%S}" if seconds else f"{local:%H:%M}"
    return f"{local:%a %Y-%m-%d} {clock} {local.tzname()} ({offset[:3]}:{offset[3:]})"


@dataclass(frozen=True)
class PreviewRow:
    at: dt.datetime
    in_schedule_zone: str
    in_viewer_zone: str


@dataclass(frozen=True)
class Preview:
    description: str
    schedule_zone: str
    viewer_zone: str
    runs: list[PreviewRow]
    problem: str | None = None  # broken: why beat skips it
    no_runs_because: str | None = None  # why `runs` is empty, when the schedule says why


def preview(task: PeriodicTask, now: dt.datetime, count: int = 5, viewer_zone=None) -> Preview:
    """Description and next runs, in the schedule's zone (UTC if none) and the viewer's."""
    viewer = viewer_zone or timezone.get_current_timezone()
    problem = schedule_problem(task, now)
    if problem:
        return Preview(describe(task), "-", str(viewer), [], problem)
    own = schedule_zone(task) or UTC
    runs = upcoming_runs(task, now, count)
    # Seconds are shown when they tell the runs apart (an interval of 10 seconds).
    seconds = any(run.second or run.microsecond for run in runs)
    rows = [PreviewRow(run, format_moment(run, own, seconds), format_moment(run, viewer, seconds))
            for run in runs]  # fmt: skip
    return Preview(describe(task), str(own), str(viewer), rows,
                   no_runs_because=None if runs else _no_event(task, now))  # fmt: skip


def _no_event(task: PeriodicTask, now: dt.datetime) -> str | None:
    sun = task.scheduler.schedule if task.solar is not None else None
    if sun is None or next_solar_event(sun, now) is not None:
        return None
    event = task.solar.get_event_display().lower()
    return f"the sun does not reach {event} there within {sun.max_search_days} days"
