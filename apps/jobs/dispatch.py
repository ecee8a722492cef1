"""Start, cancel and re-run jobs: the one place every entry point calls.

Views, the API, admin actions and management commands are thin wrappers around
`start_run`, `cancel_run` and `rerun`.
"""

import functools
import logging
import uuid
from collections.abc import Mapping, Sequence
from hashlib import sha256
from typing import Any

from celery import current_app
from django.db import IntegrityError, transaction
from django.utils import timezone
from kombu.exceptions import OperationalError

from . import inspect, packs, publishing, secrets, sending
from .catalog import Job, ParameterError, clean_parameters, get_job
from .models import NOT_STARTED, Run, Source, State
from .worker.recording import prerecorded

log = logging.getLogger(__name__)

# Parameter sets one bulk start takes (the API's body limit, 2.5 MB, comes first).
BULK_AT_MOST = 10_000
BULK_INSERT_BATCH = 1000  # rows per INSERT statement (bound parameters: 25 a row)
ERRORS_AT_MOST = 20  # bad items named in one refusal


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
    text: bool = False,
) -> Run:
    """Validate, record and (after commit) send one run. Raises ParameterError.
    `text`: the values are text typed on a command line, not JSON values (clean_parameters)."""
    parameters = clean_parameters(job, raw_parameters, text=text)
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
    run = new_run(
        job_name, parameters, source=source, args=args, user=user, label=label,
        schedule_name=schedule_name, idempotency_key=idempotency_key, rerun_of=rerun_of,
        options=options,
    )  # fmt: skip
    try:
        insert(run)
    except IntegrityError:
        existing = idempotency_key and Run.objects.filter(idempotency_key=idempotency_key).first()
        if existing:
            return existing
        raise
    # The clear values of secret parameters live only in the message (secrets.py).
    clear = {"kwargs": dict(parameters), "args": list(args or [])}
    if transaction.get_connection().in_atomic_block:
        sending.after_commit(run.task_id, functools.partial(publish, run, options, **clear))
    else:
        send_unless_broker_down(run, options, **clear)
    return run


def new_run(job_name: str, parameters: Mapping[str, Any], *, source: Source, args=None,
            user=None, label: str = "", schedule_name: str = "",
            idempotency_key: str | None = None, rerun_of: Run | None = None,
            options: Mapping[str, Any] | None = None) -> Run:  # fmt: skip
    """An unsaved run, written `queued`: its publish sets it back to `pending_send` if
    the broker does not take the message (send, sending.publish_together)."""
    return Run(
        task_id=str(uuid.uuid4()),
        job_name=job_name,
        parameters=secrets.masked(job_name, dict(parameters)),
        args=secrets.masked_args(job_name, list(args or [])),
        source=source,
        requested_by=user if user is not None and user.is_authenticated else None,
        requested_by_label=label or (user.get_username() if user else ""),
        schedule_name=schedule_name,
        queue=(options or {}).get("queue") or "",
        eta=(options or {}).get("eta"),
        state=State.QUEUED,
        queued_at=timezone.now(),
        idempotency_key=idempotency_key,
        rerun_of=rerun_of,
    )


def start_runs(
    job: Job,
    items: Sequence[Mapping[str, Any]],
    *,
    source: Source,
    user=None,
    label: str = "",
    options: Mapping[str, Any] | None = None,
    per_message: int = 1,
) -> list[Run]:
    """Start one run per parameter set, all or nothing: every item is validated first
    (ParameterError naming each bad one, `items[3].x`, before any row is written), then
    the runs are written in one transaction (one multi-row INSERT) and their messages
    published together once it commits (one producer, pipelined). Who may run the job
    is the caller's check, as for `start_run` (permissions.may_run).

    `per_message` > 1 packs that many runs into each message (apps/jobs/packs.py: for
    many short runs of an idempotent job); ParameterError if the job's runs cannot be."""
    check_per_message(job, per_message, options)
    parameter_sets = clean_items(job, items)
    options = dict(options or {})
    runs = [new_run(job.name, parameters, source=source, user=user, label=label,
                    options=options) for parameters in parameter_sets]  # fmt: skip
    with transaction.atomic():
        sending.commit_without_flush()  # with RUN_RECORDS_ASYNC_COMMIT only
        Run.objects.bulk_create(runs, batch_size=BULK_INSERT_BATCH)
        if per_message == 1:
            for run, parameters in zip(runs, parameter_sets, strict=True):
                publish_it = functools.partial(publish, run, options, kwargs=parameters)
                sending.after_commit(run.task_id, publish_it)
        else:
            for task_ids, publish_it in packs.pack_messages(job, runs, parameter_sets,
                                                            per_message):  # fmt: skip
                sending.after_commit(task_ids[0], publish_it, carries=task_ids)
    return runs


def check_per_message(job: Job, per_message: Any, options: Mapping[str, Any] | None) -> None:
    """Runs per message of a bulk start: 1, or up to PACK_AT_MOST of a packable job."""
    if type(per_message) is not int or not 1 <= per_message <= packs.PACK_AT_MOST:
        raise ParameterError({"per_message": [f"expected a whole number from 1 to "
                                              f"{packs.PACK_AT_MOST}"]})  # fmt: skip
    if per_message == 1:
        return
    if reason := packs.packing_refused(job):
        raise ParameterError({"per_message": [reason]})
    if (options or {}).keys() - {"queue"}:
        raise ParameterError({"per_message": ["packed runs take no options but a queue"]})


def clean_items(job: Job, items: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each item through `clean_parameters`, as one start would be; every bad item is
    named (up to ERRORS_AT_MOST of them) in one ParameterError."""
    if isinstance(items, str | bytes | Mapping) or not isinstance(items, Sequence):
        raise ParameterError({"items": ["expected a list of parameter sets"]})
    if not 1 <= len(items) <= BULK_AT_MOST:
        raise ParameterError({"items": [f"expected 1 to {BULK_AT_MOST} parameter sets, "
                                        f"got {len(items)}"]})  # fmt: skip
    cleaned, errors = [], {}
    for index, item in enumerate(items):
        try:
            if not isinstance(item, Mapping):
                raise ParameterError({"": ["expected an object of parameters"]})
            cleaned.append(clean_parameters(job, item))
        except ParameterError as error:
            for name, messages in error.errors.items():
                errors[f"items[{index}]" + (f".{name}" if name else "")] = messages
            if len(errors) >= ERRORS_AT_MOST:
                break
    if errors:
        raise ParameterError(errors)
    return cleaned


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
            sending.insert_run(run)
    else:
        sending.insert_run(run)


def send_unless_broker_down(
    run: Run, options: Mapping[str, Any] | None = None, kwargs: Mapping[str, Any] | None = None,
    args: Sequence[Any] | None = None,
) -> bool:  # fmt: skip
    """send(), unless a publish failed in the last few seconds (sending.broker_recently_down):
    then the run waits as "pending_send" for the sweeper at once, instead of each request
    waiting out the broker's connect and socket timeouts again (the sweeper always tries)."""
    if sending.broker_recently_down():
        log.warning("broker unreachable a moment ago; run %s waits to be sent", run.task_id)
        _not_sent(run)
        return False
    return send(run, options, kwargs=kwargs, args=args)


def send(
    run: Run, options: Mapping[str, Any] | None = None, kwargs: Mapping[str, Any] | None = None,
    args: Sequence[Any] | None = None,
) -> bool:  # fmt: skip
    """Publish a recorded run now; `kwargs` and `args`, if given, in place of the stored
    parameters and positional arguments (which hold masks where the job has secrets).

    If the broker is unreachable the run is (or stays) `pending_send`, and the sweeper
    sends it once the broker is back; a run the sweeper sends from `pending_send` is
    marked queued once the broker took it.
    """
    if run.state == State.CANCELLED:
        return False  # cancelled before the transaction committed
    try:
        publish(run, options, kwargs=kwargs, args=args)
    except OperationalError:
        log.warning("broker unreachable; run %s waits to be sent", run.task_id)
        sending.note_broker(up=False)
        _not_sent(run)
        return False
    sending.note_broker(up=True)
    if run.state == State.PENDING_SEND:
        Run.objects.filter(pk=run.pk).mark_queued()
        run.state = State.QUEUED
    return True


def _not_sent(run: Run) -> None:
    """Written queued, never published: back to pending_send, for the sweeper."""
    if run.state == State.QUEUED:
        Run.objects.filter(pk=run.pk).publish_failed()
        run.state = State.PENDING_SEND


def publish(
    run: Run,
    options: Mapping[str, Any] | None = None,
    producer=None,
    kwargs: Mapping[str, Any] | None = None,
    args: Sequence[Any] | None = None,
) -> None:
    """Publish a recorded run's message (its run is not recorded again); `kwargs` and
    `args` as for `send`. Celery's own message, built with the job's send plan (publishing.py:
    the work that is the same for every run of a job, done once per process) where
    it has one, else by `apply_async`."""
    if run.state == State.CANCELLED:
        return
    token = prerecorded.set(run.task_id)
    try:
        kwargs = run.parameters if kwargs is None else kwargs
        args = run.args if args is None else list(args)
        options = options or {}
        plan = None
        if options.keys() <= {"queue"}:
            plan = publishing.plan_for(current_app, run.job_name, options.get("queue") or "")
        if plan is not None and plan.accepts(args, kwargs):
            with current_app.producer_or_acquire(producer) as given:
                plan.send(given, run.task_id, args=args, kwargs=kwargs)
            return
        task = current_app.tasks.get(run.job_name)
        send_message = task.apply_async if task else _send_by_name(run.job_name)
        # On Redis the publish guard (sending.guarded) leaves out kombu's declare check.
        send_message(args=args, kwargs=kwargs, task_id=run.task_id,
                     producer=producer, **options)  # fmt: skip
    finally:
        prerecorded.reset(token)


def _send_by_name(name: str):
    def publish(**kwargs):
        return current_app.send_task(name, **kwargs)

    return publish


# Apps above jobs that cancel their own runs differently (apps.pipelines: a pipeline run
# cancels its steps) add a canceller here: `canceller(run, by)` returns None for a run
# that is not theirs, else whether a cancel was made.
cancellers: list = []


# States in which no execution runs a run's body: it may be cancelled whatever its job.
NOT_RUNNING = (*NOT_STARTED, State.RETRYING)


def cancel_refusal(run: Run) -> str | None:
    """Why `run` may not be cancelled now, or None: the one rule of every door (the run
    page's Cancel button, the web, the API, `manage.py jobs cancel`, the results admin's
    Terminate). A run not running yet may be, of any job; a running one only if its job
    is declared `cancellable` (cancel stops it at its next progress report, terminates
    its process): a job that is not, such as a backup, runs to its end."""
    if run.is_finished:
        return f"it already {run.state}"
    if run.state in NOT_RUNNING:
        return None
    return running_refusal(run.job_name)


def running_refusal(job_name: str) -> str | None:
    """Why a running execution of this job may not be stopped (None: it is cancellable)."""
    job = get_job(job_name)
    if job is not None and job.cancellable:
        return None
    return f"{job_name} is not cancellable: a run of it that has started runs to its end"


def cancel_run(run: Run, by=None) -> bool:
    """Revoke a run not running yet; stop a running one of a cancellable job (its
    progress report raises JobCancelled, its worker terminates it). False, with nothing
    changed, when `cancel_refusal` refuses it (which then says why)."""
    if cancel_refusal(run):
        return False
    for canceller in cancellers:
        answer = canceller(run, by)
        if answer is not None:
            return answer
    runs = Run.objects.filter(pk=run.pk)
    stoppable = running_refusal(run.job_name) is None
    if not stoppable:
        runs = runs.filter(state__in=NOT_RUNNING)  # it may have started since it was read
    not_started = runs.cancel_not_started(by)
    run.refresh_from_db()
    if run.cancel_requested_at is None:
        return False  # it started or finished meanwhile: left as it is
    inspect.revoke(run.task_id, terminate=stoppable and not not_started)
    return True


def rerun(
    run: Run, *, source: Source, user=None, label: str = "", idempotency_key: str | None = None,
    secret_values: Mapping[str, Any] | None = None,
) -> Run:  # fmt: skip
    """Run again with the same parameters; the new run links to the old one.

    A catalog job's stored parameters are validated again, as at submission: a run
    recorded before a bound existed (or written by hand) raises ParameterError. Its
    secrets were stored masked: they must be given again in `secret_values`.
    """
    stored_shape_check(run)
    given = given_secrets(run.job_name, secret_values)
    args = in_their_places(run.job_name, run.args, given)
    parameters = {**run.parameters, **given}
    return record_and_send(
        run.job_name, revalidated(run.job_name, parameters, args), args=args,
        source=source, user=user, label=label,
        rerun_of=run, options={"queue": run.queue} if run.queue else None,
        idempotency_key=idempotency_key,
    )  # fmt: skip


GIVE_IT_AGAIN = "a secret is not stored: give it again to run this again"


def given_secrets(job_name: str, values: Mapping[str, Any] | None) -> dict[str, Any]:
    """Secrets given again for a re-run; any other name is refused."""
    values = dict(values or {})
    names = secrets.secret_names(job_name)
    if others := sorted(set(values) - set(names)):
        raise ParameterError({name: ["not a secret parameter of this job"] for name in others})
    return values


def in_their_places(job_name: str, args: list, given: dict[str, Any]) -> list:
    """The stored positional arguments with each secret given again back in its place
    (a Tasks API call `sync.enqueue("acme", token)` stored the token's mask there); the
    secrets so placed are taken out of `given`, the others stay keywords."""
    job = get_job(job_name)
    filled = [p.name for p in job.params[: len(args)]] if job else []
    placed = [given.pop(name) if name in given else value
              for name, value in zip(filled, args, strict=False)]  # fmt: skip
    return placed + list(args[len(filled) :])


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
    if missing := secrets.withheld(job_name, parameters, args):
        raise ParameterError({name: [GIVE_IT_AGAIN] for name in missing})
    filled = [p.name for p in job.params[: len(args or ())]]
    cleaned = clean_parameters(job, {**dict(zip(filled, args, strict=False)), **parameters})
    return {name: value for name, value in cleaned.items() if name not in filled}
