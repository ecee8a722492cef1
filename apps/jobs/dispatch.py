"""Start, cancel and re-run jobs: the one place every entry point calls.

Views, the API, admin actions and management commands are thin wrappers around
`start_run`, `cancel_run` and `rerun`.
"""

import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from hashlib import sha256
from typing import Any

from celery import current_app
from django.db import IntegrityError, transaction
from django.utils import timezone
from kombu.exceptions import OperationalError

from .catalog import Job, ParameterError, clean_parameters, get_job
from .models import Run, Source, State
from .worker.recording import prerecorded

log = logging.getLogger(__name__)

# After a publish failed, runs started in this process within this many seconds wait as
# "pending_send" at once, for the sweeper, instead of each request waiting out the
# broker's connect and socket timeouts again (seconds each: issue 14, scenario 4).
BROKER_BACKOFF_SECONDS = 5.0
_broker_down_until = 0.0


def start_run(
    job: Job,
    raw_parameters: Mapping[str, Any],
    *,
    source: Source,
    user=None,
    label: str = "",
    idempotency_key: str | None = None,
    rerun_of: Run | None = None,
    options: Mapping[str, Any] | None = None,
) -> Run:
    """Validate, record and (after commit) send one run. Raises ParameterError."""
    parameters = clean_parameters(job, raw_parameters)
    return record_and_send(
        job.name, parameters, source=source, user=user, label=label,
        idempotency_key=idempotency_key, rerun_of=rerun_of, options=options,
    )  # fmt: skip


def record_and_send(
    job_name: str,
    parameters: Mapping[str, Any],
    *,
    source: Source,
    args: list | None = None,
    user=None,
    label: str = "",
    schedule_name: str = "",
    idempotency_key: str | None = None,
    rerun_of: Run | None = None,
    options: Mapping[str, Any] | None = None,
) -> Run:
    """Write the run record now; publish the message once the transaction commits.

    A run whose idempotency key was used before by the same user for the same job is
    not recorded again: the first run with that key is returned instead (the unique key
    decides, so two posts of the same form at once still make one run).
    """
    options = dict(options or {})
    idempotency_key = scoped_key(user, job_name, idempotency_key)
    run = Run(
        task_id=str(uuid.uuid4()),
        job_name=job_name,
        parameters=dict(parameters),
        args=list(args or []),
        source=source,
        requested_by=user if user is not None and user.is_authenticated else None,
        requested_by_label=label or (user.get_username() if user else ""),
        schedule_name=schedule_name,
        queue=options.get("queue") or "",
        state=State.PENDING_SEND,
        queued_at=timezone.now(),
        idempotency_key=idempotency_key,
        rerun_of=rerun_of,
    )
    try:
        insert(run)
    except IntegrityError:
        existing = idempotency_key and Run.objects.filter(idempotency_key=idempotency_key).first()
        if existing:
            return existing
        raise
    transaction.on_commit(lambda: send_unless_broker_down(run, options))
    return run


def send_unless_broker_down(run: Run, options: Mapping[str, Any] | None = None) -> bool:
    """send(), unless a publish failed in the last BROKER_BACKOFF_SECONDS: then the run
    waits as "pending_send" for the sweeper at once (the sweeper itself always tries)."""
    if time.monotonic() < _broker_down_until:
        log.warning("broker unreachable a moment ago; run %s waits to be sent", run.task_id)
        return False
    return send(run, options)


def scoped_key(user, job_name: str, key: str | None) -> str | None:
    """The stored key: the caller's key per user and job, so that another user posting
    the same key (or the same user, for another job) never gets the first run back."""
    if not key:
        return None
    caller = user.pk if user is not None and user.is_authenticated else ""
    return sha256(f"{caller}\n{job_name}\n{key}".encode()).hexdigest()


def insert(run: Run) -> None:
    """One INSERT, which commits by itself outside a transaction (the trigger latency's
    critical path: no BEGIN and COMMIT round trips). Inside a caller's transaction it
    gets a savepoint, so that a duplicate key leaves that transaction usable."""
    if transaction.get_connection().in_atomic_block:
        with transaction.atomic():
            run.save(force_insert=True)
    else:
        run.save(force_insert=True)


def send(run: Run, options: Mapping[str, Any] | None = None) -> bool:
    """Publish a recorded run (after_task_publish marks it queued).

    If the broker is unreachable the run stays `pending_send`, and the sweeper sends
    it once the broker is back.
    """
    global _broker_down_until
    if run.state == State.CANCELLED:
        return False  # cancelled before the transaction committed
    token = prerecorded.set(run.task_id)
    try:
        task = current_app.tasks.get(run.job_name)
        publish = task.apply_async if task else _send_by_name(run.job_name)
        publish(args=run.args, kwargs=run.parameters, task_id=run.task_id, **(options or {}))
    except OperationalError:
        log.warning("broker unreachable; run %s waits to be sent", run.task_id)
        _broker_down_until = time.monotonic() + BROKER_BACKOFF_SECONDS
        return False
    finally:
        prerecorded.reset(token)
    _broker_down_until = 0.0
    if run.state == State.PENDING_SEND:
        run.state = State.QUEUED
    return True


def _send_by_name(name: str):
    def publish(**kwargs):
        return current_app.send_task(name, **kwargs)

    return publish


def cancel_run(run: Run, by=None) -> bool:
    """Revoke a queued run; stop a running one (terminate if its job allows it)."""
    from .catalog import get_job

    if run.is_finished:
        return False
    not_started = run.cancel(by)
    job = get_job(run.job_name)
    terminate = bool(job and job.cancellable and not not_started)
    try:
        current_app.control.revoke(run.task_id, terminate=terminate, signal="SIGTERM")
    except OperationalError:
        log.warning("broker unreachable; revoke of %s not broadcast", run.task_id)
    return True


def rerun(
    run: Run, *, source: Source, user=None, label: str = "", idempotency_key: str | None = None
) -> Run:
    """Run again with the same parameters; the new run links to the old one.

    A catalog job's stored parameters are validated again, as at submission: a run
    recorded before a bound existed (or written by hand) raises ParameterError.
    """
    stored_shape_check(run)
    return record_and_send(
        run.job_name, revalidated(run.job_name, run.parameters, run.args), args=run.args,
        source=source, user=user, label=label,
        rerun_of=run, options={"queue": run.queue} if run.queue else None,
        idempotency_key=idempotency_key,
    )  # fmt: skip


def stored_shape_check(run: Run) -> None:
    """A row written by hand (or by an older version) may hold any JSON: parameters must
    be an object and positional arguments an array to be sent again."""
    if not isinstance(run.parameters, dict):
        raise ParameterError({"parameters": ["the stored parameters are not a JSON object"]})
    if not isinstance(run.args, list):
        raise ParameterError({"args": ["the stored positional arguments are not a JSON array"]})


def revalidated(
    job_name: str, parameters: Mapping[str, Any], args: Sequence[Any] = ()
) -> Mapping[str, Any]:
    """Stored parameters checked against the job's rules of today (plain Celery tasks,
    which have no declared parameters, pass as they are). Positional arguments (a Tasks
    API call such as `greet.enqueue("x")`) are checked as the parameters they fill and
    stay positional."""
    job = get_job(job_name)
    if job is None:
        return parameters
    filled = [p.name for p in job.params[: len(args or ())]]
    cleaned = clean_parameters(job, {**dict(zip(filled, args, strict=False)), **parameters})
    return {name: value for name, value in cleaned.items() if name not in filled}
