import functools
import math
import numbers

from django.conf import settings
from django.db import connections, models
from django.db.models import F
from django.urls import reverse
from django.utils import timezone


class Source(models.TextChoices):
    WEB = "web"
    ADMIN = "admin"
    API = "api"
    CLI = "cli"
    SCHEDULE = "schedule"
    SHELL = "shell"
    TASKS_API = "tasks_api", "Tasks API"
    PIPELINE = "pipeline"  # a step of a pipeline run (apps.pipelines)


class State(models.TextChoices):
    PENDING_SEND = "pending_send", "waiting to be sent"
    # A pipeline's step recorded at the pipeline's start, sent by Celery's canvas once
    # the steps before it are done (the sweeper leaves it alone).
    WAITING = "waiting", "waiting for earlier steps"
    QUEUED = "queued"
    STARTED = "started"
    PROGRESS = "progress"
    RETRYING = "retrying"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"


FINISHED_STATES = (State.SUCCEEDED, State.FAILED, State.CANCELLED, State.SKIPPED)
ACTIVE_STATES = (State.QUEUED, State.STARTED, State.PROGRESS, State.RETRYING)
NOT_STARTED = (State.PENDING_SEND, State.QUEUED, State.WAITING)
# States from which a worker may (re)start a run: redelivery after a lost worker
# restarts a STARTED run; a finished or cancelled run is never started again.
STARTABLE_STATES = (State.PENDING_SEND, State.QUEUED, State.RETRYING, State.STARTED,
                    State.PROGRESS, State.WAITING)  # fmt: skip
# States a stuck run may be sent again from (by hand: the sweeper's resend).
RESENDABLE_STATES = (State.PENDING_SEND, State.QUEUED, State.STARTED, State.PROGRESS)
# States in which a worker holds a run (the sweeper takes back those of a lost worker).
HELD_STATES = (State.STARTED, State.PROGRESS)


class RunQuerySet(models.QuerySet):
    """The run's lifecycle: each transition is one conditional UPDATE that returns how
    many runs it moved (0: the run was not in a state that allows it; nothing changed).

        pending_send --mark_queued--> queued --claim_start--> started --report_progress-->
        progress --finish--> succeeded | failed | retrying (again claim_start) | cancelled

    `Run.cancel` and `Run.record_skipped` are the two transitions of one run by hand and
    by beat. `take_back` / `fail_held` are the sweeper's, for runs a lost worker held.
    A claim writes the execution's token (`attempt`); passed to report_progress and
    finish, it makes them apply only while that execution still holds the run. The
    worker's hot path writes claim_start and finish as prepared statements built by
    `Run.claim_start_statement` / `Run.finish_statement` from the same values and
    allowed states (apps/jobs/backend.py).
    """

    def active(self):
        return self.filter(state__in=ACTIVE_STATES)

    def finished(self):
        return self.filter(state__in=FINISHED_STATES)

    def mark_queued(self) -> int:
        """The broker took their messages: pending_send (or a waiting step) -> queued."""
        return self.filter(state__in=(State.PENDING_SEND, State.WAITING)).update(
            state=State.QUEUED
        )

    def publish_failed(self) -> int:
        """Written queued, but their messages never reached the broker: queued (never
        delivered) -> pending_send, for the sweeper to send."""
        return self.filter(state=State.QUEUED, deliveries=0).update(state=State.PENDING_SEND)

    def claim_start(self, *, worker: str, retries: int = 0, redelivered: bool = False,
                    attempt: str = "") -> int:  # fmt: skip
        """A worker starts them (one more delivery); never a finished or cancelled run.
        `attempt` names this execution: its later writes apply only while it holds it."""
        values = start_values(worker, retries, redelivered, attempt)
        return self.filter(state__in=STARTABLE_STATES).update(
            **values, deliveries=F("deliveries") + 1
        )

    def held_by(self, attempt: str | None):
        """Those the execution `attempt` still holds (None: no fence, every run)."""
        return self if attempt is None else self.filter(attempt=attempt)

    def report_progress(self, done: float, total: float, message: str,
                        attempt: str | None = None) -> int:  # fmt: skip
        """Progress of a running run whose cancel nobody asked for (ValueError, nothing
        written, for numbers `check_progress` refuses)."""
        check_progress(done, total)
        return (
            self.held_by(attempt).filter(cancel_requested_at__isnull=True)
            .exclude(state__in=FINISHED_STATES)
            .update(state=State.PROGRESS, progress_done=done, progress_total=total,
                    progress_message=message[:500])
        )  # fmt: skip

    def finish(self, state: State, *, at=None, note: str | None = None,
               attempt: str | None = None) -> int:  # fmt: skip
        """An outcome (succeeded, failed, cancelled; or retrying, which is not final):
        a finished run stays as it is; with `attempt`, only while that execution holds it."""
        values = finish_values(state, at)
        if note is not None:
            values["note"] = note
        return self.held_by(attempt).exclude(state__in=FINISHED_STATES).update(**values)

    def mark_unsent(self, note: str) -> int:
        """Back to pending_send, to be sent again with the same task id (stuck runs). The
        execution that held a started one no longer does: its late writes are refused."""
        return self.filter(state__in=RESENDABLE_STATES).update(
            state=State.PENDING_SEND, note=note, attempt=""
        )

    def take_back(self, note: str) -> int:
        """Runs held by a worker presumed lost, to be sent again: pending_send, and no
        longer held by the lost execution (its late writes are refused)."""
        return self.filter(state__in=HELD_STATES).update(
            state=State.PENDING_SEND, note=note, attempt=""
        )

    def fail_held(self, note: str) -> int:
        """Runs held by a worker presumed lost that are not safe to run again: failed,
        and no longer held by the lost execution (its late outcome is refused)."""
        return self.filter(state__in=HELD_STATES).update(
            **finish_values(State.FAILED), note=note, attempt=""
        )

    def cancel_not_started(self, by=None) -> int:
        """Ask these runs to stop (cancel_requested_at) and cancel at once those not
        started yet; returns how many were cancelled. `Run.cancel` of one run, and the
        bulk cancel of many, in two conditional UPDATEs."""
        now = timezone.now()
        self.filter(cancel_requested_at__isnull=True).update(cancel_requested_at=now)
        note = "Cancelled before it started."
        if by is not None and getattr(by, "is_authenticated", False):
            note = f"Cancelled before it started, by {by.get_username()}."
        return self.filter(state__in=NOT_STARTED).update(
            state=State.CANCELLED, finished_at=now, note=note
        )

    def mark_handled(self, by=None, label: str = "") -> int:
        """Failures somebody dealt with (discarded, or retried): they leave the failed
        lists and counts. Only failed runs not handled yet; returns how many."""
        who = by if by is not None and getattr(by, "is_authenticated", False) else None
        label = (label or (who.get_username() if who else ""))[:200]
        return self.unhandled_failures().update(
            handled_at=timezone.now(), handled_by=who, handled_by_label=label
        )

    def unhandled_failures(self):
        """Failed for good (retries exhausted) and not dealt with."""
        return self.filter(IS_UNHANDLED_FAILURE)

    def visible_to(self, user):
        """Runs of the jobs this user may run, and the runs they started themselves."""
        from .permissions import allowed_job_names, sees_all_runs

        if sees_all_runs(user):
            return self

        return self.filter(
            models.Q(job_name__in=allowed_job_names(user)) | models.Q(requested_by=user)
        )


HAS_RERUN_OF = models.Q(rerun_of__isnull=False)
HAS_HANDLER = models.Q(handled_by__isnull=False)
IS_STEP = models.Q(pipeline__isnull=False)
HAS_KEY = models.Q(idempotency_key__isnull=False)
IS_UNHANDLED_FAILURE = models.Q(state=State.FAILED, handled_at__isnull=True)


class Run(models.Model):
    """One dispatch of a job, recorded before its message reaches the broker.

    The django-celery-results row with the same task_id holds Celery's own view
    (result, traceback, worker); this row holds who asked, from where, and the state
    a person sees, kept current by the worker's signals.
    """

    task_id = models.CharField(max_length=255, unique=True)
    job_name = models.CharField(max_length=255)
    parameters = models.JSONField(default=dict, blank=True)
    args = models.JSONField(default=list, blank=True)
    source = models.CharField(max_length=16, choices=Source.choices)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        db_index=False,  # run_user_newest leads with it
    )  # fmt: skip
    requested_by_label = models.CharField(max_length=200, blank=True)
    schedule_name = models.CharField(max_length=200, blank=True)
    queue = models.CharField(max_length=200, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    queued_at = models.DateTimeField()
    # The earliest start its sender asked for (a Tasks API `run_after`, Celery's `eta` or
    # `countdown`): a worker holds the message until then, and the sweeper counts its
    # wait from then (sweeper.waited_since). NULL: it may start at once.
    eta = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    retries = models.PositiveIntegerField(default=0)
    deliveries = models.PositiveIntegerField(default=0)
    send_attempts = models.PositiveIntegerField(default=0)
    progress_done = models.FloatField(null=True, blank=True)
    progress_total = models.FloatField(null=True, blank=True)
    progress_message = models.CharField(max_length=500, blank=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    rerun_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="reruns",
        db_index=False,  # run_reruns: the few runs that have one
    )  # fmt: skip
    # Unique where set (Meta): NULL for the runs without one.
    idempotency_key = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    note = models.TextField(blank=True)
    # A failure somebody dealt with (discarded, or retried): who and when.
    handled_at = models.DateTimeField(null=True, blank=True)
    handled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+", db_index=False,  # run_handled_by: the few runs that have one
    )  # fmt: skip
    handled_by_label = models.CharField(max_length=200, blank=True)
    # A pipeline's step: the pipeline's own run and the step's name in it (apps.pipelines).
    pipeline = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="steps",
        db_index=False,  # run_steps: the few runs that are steps
    )  # fmt: skip
    step = models.CharField(max_length=200, blank=True)
    # The execution that holds the run (a token its worker drew when it claimed it): its
    # progress and outcome are written only while it is still this one. The sweeper
    # clears it when it takes a run back from a lost worker, fencing out late writes.
    attempt = models.CharField(max_length=32, blank=True)

    objects = RunQuerySet.as_manager()

    class Meta:
        ordering = ["-queued_at", "-id"]
        indexes = [
            models.Index(fields=["-queued_at", "-id"], name="run_newest"),
            models.Index(fields=["job_name", "-queued_at"], name="run_job_newest"),
            models.Index(fields=["state", "-queued_at"], name="run_state_newest"),
            models.Index(fields=["source", "-queued_at"], name="run_source_newest"),
            models.Index(fields=["requested_by", "-queued_at"], name="run_user_newest"),
            models.Index(fields=["schedule_name", "-queued_at"], name="run_schedule_newest"),
            # Columns most runs leave empty are indexed where they are not (issue 15): a
            # run's row is written three times (recorded, started, finished), each time
            # into every index, and these held an entry for every run's NULL.
            models.Index(fields=["rerun_of"], name="run_reruns", condition=HAS_RERUN_OF),
            models.Index(fields=["handled_by"], name="run_handled_by", condition=HAS_HANDLER),
            models.Index(fields=["pipeline"], name="run_steps", condition=IS_STEP),
            # Failed for good (/runs/failed/, its count, the dashboard's list): only
            # unhandled failures, with what their grouping reads (PostgreSQL: an
            # index-only scan; SQLite keeps the key columns).
            models.Index(
                fields=["-queued_at", "-id"],
                name="run_unhandled_failures",
                condition=IS_UNHANDLED_FAILURE,
                include=["task_id", "job_name", "finished_at", "pipeline"],
            ),
        ]
        constraints = [
            models.UniqueConstraint(fields=["idempotency_key"], condition=HAS_KEY,
                                    name="run_idempotency_key_unique"),
        ]  # fmt: skip
        permissions = [("view_all_runs", "Can see every run")]

    def __str__(self) -> str:
        return f"{self.job_name} [{self.task_id}]"

    def get_absolute_url(self) -> str:
        return reverse("jobs:run", args=[self.pk])

    # The lifecycle, one run at a time (the QuerySet above has the rest) ---------------

    def cancel(self, by=None) -> bool:
        """Ask this run to stop. A run not started yet is cancelled at once (True); a
        started one only has its cancel requested (False): its job stops at its next
        progress report, or its worker terminates it (dispatch.cancel_run). `by`, if
        given, is named in the note."""
        cancelled = Run.objects.filter(pk=self.pk).cancel_not_started(by)
        self.refresh_from_db()
        return bool(cancelled)

    def claim_send(self, state: State, note: str | None = None) -> bool:
        """A sweeper takes this run to send (again): still in `state`, never delivered
        if queued, and not sent by another sweeper since it was read (send_attempts)."""
        runs = Run.objects.filter(pk=self.pk, state=state, send_attempts=self.send_attempts)
        if state == State.QUEUED:
            runs = runs.filter(deliveries=0)
        extra = {"note": note} if note is not None else {}
        return runs.update(send_attempts=F("send_attempts") + 1, **extra) == 1

    def record_skipped(self, reason: str) -> None:
        """Record this unsaved run as skipped (not sent) with the reason; a run already
        recorded under its task id is left as it is."""
        now = timezone.now()
        self.state, self.finished_at, self.note = State.SKIPPED, now, reason
        self.queued_at = self.queued_at or now
        Run.objects.bulk_create([self], ignore_conflicts=True)

    @staticmethod
    def claim_start_statement(connection, task_id: str, *, worker: str, retries: int = 0,
                              redelivered: bool = False, attempt: str = "",
                              no_flush: bool = False) -> tuple[str, list]:  # fmt: skip
        """`claim_start` of one run as (sql, params), for the result backend's prepared
        statements: the same values and allowed states. `no_flush`: the commit of a
        run's first claim does not wait for the WAL flush (apps/jobs/sending.py,
        RUN_RECORDS_ASYNC_COMMIT)."""
        values = start_values(worker, retries, redelivered, attempt)
        return _update_statement(connection, task_id, values, STARTABLE_STATES, claim=True,
                                 no_flush=no_flush)  # fmt: skip

    @staticmethod
    def finish_statement(connection, task_id: str, state: State,
                         attempt: str | None = None) -> tuple[str, list]:  # fmt: skip
        """`finish` of one run as (sql, params), for the result backend (with `attempt`:
        only while that execution holds the run)."""
        values = finish_values(state)
        return _update_statement(connection, task_id, values, FINISHED_STATES, claim=False,
                                 attempt=attempt)  # fmt: skip

    @property
    def is_finished(self) -> bool:
        return self.state in FINISHED_STATES

    @property
    def percent(self) -> int | None:
        """0 to 100, or None: worked out only from finite numbers and a total above 0, so
        any stored row (written by hand or by an older version) reads."""
        done, total = self.progress_done or 0, self.progress_total
        if total is None or not (math.isfinite(done) and math.isfinite(total)) or total <= 0:
            return None
        if done <= 0 or done >= total:
            return 0 if done <= 0 else 100
        return round(100 * done / total)  # (0 < done < total: no overflow)

    @property
    def wait_time(self):
        return self.started_at - self.queued_at if self.started_at else None

    @property
    def run_time(self):
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None

    @property
    def handled_by_name(self) -> str:
        if self.handled_by_id:
            return self.handled_by.get_username()
        return self.handled_by_label or "unknown"

    @property
    def who(self) -> str:
        if self.requested_by_id:
            return self.requested_by.get_username()
        return self.requested_by_label or "unknown"


def check_progress(done: float, total: float) -> None:
    """The rule of progress, wherever it is written: `done` and `total` are finite numbers,
    neither below 0 (ValueError saying what was given, for the job's author). A `done`
    past its `total` (an estimate the job overshot) is kept and shown as 100 %."""
    for name, value in (("done", done), ("total", total)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ValueError(f"progress {name} must be a number, not {value!r:.40}")
        if not math.isfinite(value):
            raise ValueError(f"progress {name} must be a finite number, not {value!r}")
    for name, value in (("done", done), ("total", total)):
        if value < 0:
            raise ValueError(f"progress {name} must be 0 or more, not {value!r}")


def start_values(worker: str, retries: int = 0, redelivered: bool = False,
                 attempt: str = "") -> dict:  # fmt: skip
    """The run's new columns when a worker starts it (besides one more delivery)."""
    values = {"state": State.STARTED, "started_at": timezone.now(), "worker": worker or "",
              "retries": retries or 0, "attempt": attempt or ""}  # fmt: skip
    if redelivered:
        values["note"] = "Redelivered after its worker was lost."
    return values


def finish_values(state: State, at=None) -> dict:
    """The run's new columns for an outcome: finished_at for a final state."""
    if state in FINISHED_STATES:
        return {"state": state, "finished_at": at or timezone.now()}
    return {"state": state}


def _update_statement(connection, task_id: str, values: dict, states, *, claim: bool,
                      attempt: str | None = None, no_flush: bool = False):  # fmt: skip
    """UPDATE one run's columns where its state is in `states` (claim: one more
    delivery) or, for an outcome, where it is not (a finished run stays finished); with
    `attempt`, only while that execution holds the run; `no_flush` (a claim), turning
    synchronous_commit off for its own transaction if it is the run's first (PostgreSQL)."""
    fenced = attempt is not None
    text = _update_text(connection.alias, tuple(values), len(states), claim, fenced, no_flush)
    params = [value if value is None or type(value) is str
              else Run._meta.get_field(name).get_db_prep_save(value, connection)
              for name, value in values.items()]  # fmt: skip
    return text, [*params, task_id, *map(str, states), *([attempt] if fenced else [])]


@functools.cache
def _update_text(alias: str, names: tuple[str, ...], states: int, claim: bool,
                 fenced: bool = False, no_flush: bool = False) -> str:  # fmt: skip
    """Built once per set of columns: only quoted names from the model's meta in it."""
    quote = connections[alias].ops.quote_name
    column = {name: quote(Run._meta.get_field(name).column)
              for name in (*names, "deliveries", "state", "task_id", "attempt")}  # fmt: skip
    assignments = [f"{column[name]} = %s" for name in names]
    if claim:
        assignments.append(f"{column['deliveries']} = {column['deliveries']} + 1")
    placeholders = ", ".join(["%s"] * states)
    sql = f"UPDATE {quote(Run._meta.db_table)} SET {', '.join(assignments)} "  # noqa: S608
    sql += (f"WHERE {column['task_id']} = %s AND {'' if claim else 'NOT '}"
            f"{column['state']} IN ({placeholders})")  # fmt: skip
    sql += f" AND {column['attempt']} = %s" if fenced else ""
    if not no_flush:
        return sql
    # Only a run's first claim: no execution of it stored anything yet (see sending.py).
    return sql + (f" RETURNING CASE WHEN {column['deliveries']} = 1 THEN"
                  " set_config('synchronous_commit', 'off', true) END")  # fmt: skip
