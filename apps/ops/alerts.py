"""Email people when runs fail for good, schedules miss their run, or beat stops.

`check_alerts()` is one idempotent sweep (the task apps.ops.tasks.check_alerts runs it
every minute). Each problem is an Incident keyed by what it is about; repeats count up
on the open incident instead of sending mail, and mail about one key goes out at most
once per ALERT_MIN_INTERVAL_MINUTES, except the first and the recovery message.
"""

import logging
import smtplib
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import BadHeaderError, send_mail
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from apps.jobs.catalog import get_job
from apps.jobs.models import ACTIVE_STATES, Run, State
from apps.jobs.worker.recording import is_recorded
from apps.scheduling.bounds import one_line
from apps.scheduling.models import Schedule
from apps.scheduling.preview import schedule_problem

from .health import check_beat
from .models import Cursor, Incident, Kind, Notice

log = logging.getLogger(__name__)

DEFAULT_GRACE_SECONDS = 300  # schedules without ScheduleOptions
SETTLE = timedelta(seconds=5)  # read failures this old, so slower commits are not skipped
FIRST_LOOK_BACK = timedelta(minutes=10)  # on the very first sweep
RUN_LOOK_BACK = timedelta(days=2)  # a run that fails now was queued at most this long ago
SLACK = timedelta(seconds=10)  # clock skew between beat and the database
# Schedules read (with their schedule rows) at a time. Each is a few KiB as objects, and
# a worker process keeps the memory of its largest batch: 2,000 at a time grew it by
# about 5 MiB at 10,000 schedules.
SCHEDULES_AT_ONCE = 500


def check_alerts(now: datetime | None = None) -> dict[str, int]:
    now = now or timezone.now()
    beat_ok = check_beat_heartbeat(now)
    counts = {"failures": check_failures(now), "recoveries": check_failure_recoveries(now)}
    # With beat down every schedule misses its run: the one beat incident says it all.
    counts["broken"], counts["missed"] = check_schedules(now, look_for_missed=beat_ok)
    return counts


def min_interval() -> timedelta:
    return timedelta(minutes=settings.ALERT_MIN_INTERVAL_MINUTES)


# Failed runs --------------------------------------------------------------------------


def check_failures(now: datetime) -> int:
    window = claim_window("failed-runs", now - SETTLE)
    if window is None:
        return 0
    start, end = window
    failed = Run.objects.filter(
        state=State.FAILED,
        queued_at__gte=start - RUN_LOOK_BACK,
        finished_at__gt=start,
        finished_at__lte=end,
    ).order_by("finished_at")
    # A burst of failures of one job is one update: its latest run, and how many.
    latest: dict[str, Run] = {}
    times: Counter[str] = Counter()
    for run in failed.only(*FAILURE_FIELDS):
        latest[failure_key(run)] = run
        times[failure_key(run)] += 1
    for key, run in latest.items():
        try:
            report_failure(run, now, times[key])
        except Exception:
            log.exception("could not report the failure of run %s", run.pk)
    return times.total()


FAILURE_FIELDS = ("task_id", "job_name", "schedule_name", "finished_at")


def failure_key(run: Run) -> str:
    """Failures are grouped per job, and per schedule (whose recipients differ)."""
    return f"{run.job_name}@{run.schedule_name}" if run.schedule_name else run.job_name


def claim_window(name: str, end: datetime) -> tuple[datetime, datetime] | None:
    """Move the named cursor to `end`; the sweep that moves it owns (start, end]."""
    cursor, _ = Cursor.objects.get_or_create(
        name=name, defaults={"position": end - FIRST_LOOK_BACK}
    )
    start = cursor.position
    if start >= end:
        return None
    if not Cursor.objects.filter(pk=cursor.pk, position=start).update(position=end):
        return None  # another sweep claimed it first
    return start, end


def report_failure(run: Run, now: datetime, times: int = 1) -> Incident:
    job = get_job(run.job_name)
    title = f"{job.title if job else run.job_name} failed"
    if run.schedule_name:
        title += f" (schedule {run.schedule_name})"
    return report_problem(
        Kind.FAILED_RUN,
        failure_key(run),
        now,
        title=title,
        detail=f"Run {run.task_id} failed at {run.finished_at:%Y-%m-%d %H:%M:%S %Z}.",
        link=run.get_absolute_url(),
        job_name=run.job_name,
        schedule_name=run.schedule_name,
        seen_at=run.finished_at,
        times=times,
    )


def check_failure_recoveries(now: datetime) -> int:
    """Close failure incidents whose job (from the same schedule) has since succeeded."""
    recovered = 0
    for incident in Incident.objects.open().filter(kind=Kind.FAILED_RUN):
        success = (
            Run.objects.filter(
                job_name=incident.job_name,
                schedule_name=incident.schedule_name,
                state=State.SUCCEEDED,
                queued_at__gte=incident.last_seen_at - RUN_LOOK_BACK,
                finished_at__gt=incident.last_seen_at,
            )
            .order_by("finished_at")
            .first()
        )
        if success:
            detail = f"Run {success.task_id} succeeded at {success.finished_at:%H:%M:%S %Z}."
            recovered += resolve(incident, now, detail)
    return recovered


# Missed schedules ---------------------------------------------------------------------


@dataclass(frozen=True)
class Missed:
    task: Schedule
    due: datetime
    grace: timedelta


def check_schedules(now: datetime, look_for_missed: bool = True) -> tuple[int, int]:
    """Report broken schedules (beat skips them) and missed runs; resolve the rest.

    One schedule that cannot be read or computed is reported (or logged) on its own:
    it never stops the others' alerts.
    """
    broken: dict[str, str] = {}
    missed: dict[str, Missed] = {}
    for task in enabled_schedules():
        try:
            problem = schedule_problem(task, now)
            if problem:
                broken[task.name] = problem
                report_broken(task, problem, now)
            elif look_for_missed and (m := missed_run(task, now)) is not None:
                missed[task.name] = m
                report_missed(m, now)
        except Exception:
            log.exception("could not check schedule %s", task.name)
    _resolve_others(Kind.BROKEN_SCHEDULE, broken, now, "It was fixed (or disabled).")
    _resolve_others(Kind.MISSED_RUN, missed, now, "It has run again (or was disabled).")
    return len(broken), len(missed)


def check_missed_runs(now: datetime) -> int:
    return check_schedules(now)[1]


def _resolve_others(kind: Kind, current: dict, now: datetime, detail: str) -> None:
    for incident in Incident.objects.open().filter(kind=kind):
        if incident.key not in current:
            resolve(incident, now, detail)


def enabled_schedules():
    """Every enabled schedule; one whose schedule row cannot be read (a time zone no one
    knows) comes without it (select_related), so schedule_problem finds it broken."""
    enabled = Schedule.objects.enabled()
    pks = list(enabled.values_list("pk", flat=True))
    for start in range(0, len(pks), SCHEDULES_AT_ONCE):
        chunk = enabled.filter(pk__in=pks[start : start + SCHEDULES_AT_ONCE])
        try:
            yield from list(chunk.with_schedules())
        except Exception:
            log.exception("a schedule cannot be read; reading them one by one")
            yield from chunk


def missed_run(task: Schedule, now: datetime) -> Missed | None:
    """The due time it missed (Schedule.due_at, beat's own answer): past, plus grace, with
    no run started since."""
    if not is_recorded(task.task):
        return None
    due = task.due_at(now)
    grace = timedelta(seconds=_grace_seconds(task))
    if due is None or now - due < grace or ran_since(task.name, due):
        return None
    return Missed(task, due, grace)


def report_broken(task: PeriodicTask, problem: str, now: datetime) -> Incident:
    return report_problem(
        Kind.BROKEN_SCHEDULE,
        task.name,
        now,
        title=f"Schedule {task.name} is broken: beat skips it",
        detail=f"{problem}. Fix or disable it in the admin; until then it does not run.",
        link=reverse("admin:django_celery_beat_periodictask_change", args=[task.pk]),
        job_name=task.task,
        schedule_name=task.name,
        occurrence=problem[:100],
    )


def _grace_seconds(task: PeriodicTask) -> int:
    options = getattr(task, "options", None)  # no ScheduleOptions row: the default
    return options.grace_seconds if options else DEFAULT_GRACE_SECONDS


def ran_since(schedule_name: str, due: datetime) -> bool:
    """A run of this schedule started since it was due, or one is still running."""
    runs = Run.objects.filter(schedule_name=schedule_name)
    started = runs.filter(queued_at__gte=due - SLACK).exclude(
        state__in=[State.QUEUED, State.PENDING_SEND]
    )
    busy = runs.filter(state__in=[s for s in ACTIVE_STATES if s != State.QUEUED])
    return started.exists() or busy.exists()


def report_missed(missed: Missed, now: datetime) -> Incident:
    name = missed.task.name
    due = timezone.localtime(missed.due)
    return report_problem(
        Kind.MISSED_RUN,
        name,
        now,
        title=f"Schedule {name} missed its run",
        detail=(
            f"It was due at {due:%Y-%m-%d %H:%M:%S %Z} and no run of it started within "
            f"{missed.grace.total_seconds():.0f} s."
        ),
        link=reverse("admin:django_celery_beat_periodictask_change", args=[missed.task.pk]),
        job_name=missed.task.task,
        schedule_name=name,
        occurrence=due.isoformat(),
    )


# Beat ---------------------------------------------------------------------------------


def check_beat_heartbeat(now: datetime) -> bool:
    check = check_beat()
    if check.ok:
        for incident in Incident.objects.open().filter(kind=Kind.BEAT_DOWN):
            resolve(incident, now, f"Beat is ticking again ({check.detail}).")
        return True
    report_problem(
        Kind.BEAT_DOWN, "beat", now,
        title="Beat is not ticking: no schedule is being sent",
        detail=f"Beat heartbeat: {check.detail}.", link="/", occurrence="down",
    )  # fmt: skip
    return False


# Incidents ----------------------------------------------------------------------------


def report_problem(
    kind: Kind,
    key: str,
    now: datetime,
    *,
    title: str,
    detail: str,
    link: str = "",
    job_name: str = "",
    schedule_name: str = "",
    seen_at: datetime | None = None,
    occurrence: str | None = None,
    times: int = 1,
) -> Incident:
    """Open an incident (and email) or count a repeat on the open one (email rarely).

    `occurrence` identifies what happened (a missed due time); a sweep that sees the same
    occurrence again changes nothing. Failures are each a new occurrence (None),
    `times` of them at once.
    """
    incident, is_new = _open_incident(kind, key, now, title=title, job_name=job_name,
                                      schedule_name=schedule_name)  # fmt: skip
    repeat = not is_new and (occurrence is None or occurrence != incident.occurrence)
    if is_new:
        incident.count = times
    elif repeat:
        incident.count += times
    if is_new or repeat:
        incident.title, incident.detail, incident.link = title, detail, link
        incident.last_seen_at = seen_at or now
        incident.occurrence = occurrence or ""
    incident.save()
    if is_new or incident.last_notice == Notice.NONE or (repeat and _may_email(incident, now)):
        notify(incident, "reminder" if incident.last_notice == Notice.PROBLEM else "problem", now)
    return incident


def _open_incident(kind: Kind, key: str, now: datetime, **fields) -> tuple[Incident, bool]:
    """The open incident for the key; else a just-resolved one reopened (flapping: no
    new mail); else a new one."""
    current = Incident.objects.open().filter(kind=kind, key=key).first()
    if current:
        return current, False
    recent = (
        Incident.objects.filter(kind=kind, key=key, resolved_at__gte=now - min_interval())
        .order_by("-resolved_at")
        .first()
    )
    try:
        with transaction.atomic():
            if recent:
                recent.resolved_at = None
                recent.save(update_fields=["resolved_at"])
                return recent, False
            created = Incident.objects.create(
                kind=kind, key=key, opened_at=now, last_seen_at=now, **fields
            )
            return created, True
    except IntegrityError:  # a concurrent sweep opened it
        return Incident.objects.open().get(kind=kind, key=key), False


def resolve(incident: Incident, now: datetime, detail: str) -> int:
    """Close an incident; tell people if the last thing they heard was that it failed."""
    closed = Incident.objects.filter(pk=incident.pk, resolved_at__isnull=True).update(
        resolved_at=now
    )
    if not closed:
        return 0
    incident.resolved_at = now
    if incident.last_notice == Notice.PROBLEM:
        incident.detail = detail
        notify(incident, "recovery", now)
    return 1


def _may_email(incident: Incident, now: datetime) -> bool:
    last = incident.last_notified_at
    return last is None or now - last >= min_interval()


SUBJECTS = {
    "problem": "{title}",
    "reminder": "Still happening ({count} times): {title}",
    "recovery": "Recovered: {title}",
}


def notify(incident: Incident, phase: str, now: datetime) -> bool:
    title = one_line(incident.title)  # a name stored with CR/LF must not break the header
    subject = "[Switchyard] " + SUBJECTS[phase].format(title=title,
                                                       count=incident.count)  # fmt: skip
    body = "\n\n".join(
        line for line in (
            incident.detail,
            f"Open since {timezone.localtime(incident.opened_at):%Y-%m-%d %H:%M %Z}; "
            f"seen {incident.count} time(s).",
            absolute(incident.path) if incident.link else "",
        ) if line
    )  # fmt: skip
    if not send(recipients(incident), subject[:200], body):
        return False
    incident.last_notified_at = now
    incident.last_notice = Notice.RECOVERY if phase == "recovery" else Notice.PROBLEM
    incident.save(update_fields=["last_notified_at", "last_notice"])
    return True


def recipients(incident: Incident) -> list[str]:
    """The schedule's alert recipients if it names any, else ADMINS."""
    if incident.schedule_name:
        task = (
            PeriodicTask.objects.filter(name=incident.schedule_name)
            .select_related("options")
            .first()
        )
        options = getattr(task, "options", None) if task else None
        if options and options.recipients:
            return options.recipients
    return [address for _, address in settings.ADMINS]


def send(to: list[str], subject: str, body: str) -> bool:
    if not to:
        log.warning("alert not emailed (no recipients, set ADMINS): %s", subject)
        return False
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, to)
    except (OSError, smtplib.SMTPException, BadHeaderError):
        log.exception("could not email alert %r", subject)
        return False
    return True


def absolute(path: str) -> str:
    """A path on this site as a URL for mail, which leaves the site: pages link by path."""
    return settings.SITE_URL + path
