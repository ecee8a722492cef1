"""Secret parameters (`token: Secret[str]`, apps/jobs/params.py): the one place that
knows which values are secret and what a reader sees instead.

The clear value travels only in the Celery message's body. Everything else is masked:
the run record's parameters (`masked`, called by dispatch and by the publish-side
recording), Celery's `argsrepr`/`kwargsrepr` headers (`mask_reprs`, so Flower, worker
logs and the results table's task_args/task_kwargs show the mask), and what the worker
stores or logs about a run: its result and traceback (`scrub`, called by the result
backend) and its log lines (`remember_secrets` installs a log record filter).

A stored run whose secret was masked cannot be sent again as it is: `withheld` names
the secrets a re-run must be given again, and the sweeper fails such a run instead of
sending the mask.
"""

import json
import logging
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from celery import signals
from celery.utils.saferepr import saferepr

from .catalog import get_job

MASK = "********"
# Shorter values are masked where they are a parameter, but not searched for in free
# text (a one-letter "secret" would blank out every such letter of a traceback).
MIN_SCRUB_LENGTH = 4
REPR_MAXSIZE = 1024  # Celery's own argsrepr/kwargsrepr size


def secret_names(job_name: str | None) -> tuple[str, ...]:
    """The job's parameters declared Secret, in signature order ((), for a plain task)."""
    job = get_job(job_name) if job_name else None
    return tuple(p.name for p in job.params if p.secret) if job else ()


def _given(value: Any) -> bool:
    return value is not None and value != ""


def masked(job_name: str, kwargs: Any) -> Any:
    """The keyword arguments with every given secret replaced by MASK."""
    names = secret_names(job_name)
    if not names or not isinstance(kwargs, Mapping):
        return kwargs
    return {k: MASK if k in names and _given(v) else v for k, v in kwargs.items()}


def masked_args(job_name: str, args: Any) -> Any:
    """Positional arguments with the secrets among them masked (`task.delay("tok")`)."""
    positions = _secret_positions(job_name)
    if not positions or not isinstance(args, list | tuple):
        return args
    return [MASK if i in positions and _given(v) else v for i, v in enumerate(args)]


def _secret_positions(job_name: str) -> set[int]:
    job = get_job(job_name)
    return {i for i, p in enumerate(job.params) if p.secret} if job else set()


def withheld(job_name: str, kwargs: Any, args: Sequence[Any] = ()) -> list[str]:
    """The secrets whose stored value is the mask: they must be given again to send."""
    names, found = secret_names(job_name), []
    if not names:
        return found
    kwargs = kwargs if isinstance(kwargs, Mapping) else {}
    args = args if isinstance(args, list | tuple) else ()
    positional = dict(zip([p.name for p in get_job(job_name).params], args, strict=False))
    for name in names:
        if kwargs.get(name, positional.get(name)) == MASK:
            found.append(name)
    return found


def values(job_name: str | None, args: Any, kwargs: Any) -> list[str]:
    """The clear secret values of one call, as text, long enough to search for."""
    names = secret_names(job_name)
    if not names:
        return []
    by_name = dict(kwargs) if isinstance(kwargs, Mapping) else {}
    if isinstance(args, list | tuple):
        params = get_job(job_name).params
        by_name.update((p.name, v) for p, v in zip(params, args, strict=False))
    found = (str(by_name[n]) for n in names if _given(by_name.get(n)))
    return [v for v in found if len(v) >= MIN_SCRUB_LENGTH and v != MASK]


def scrub(text: Any, secrets: Iterable[str]) -> Any:
    """The text with each secret (as it is, and as it reads inside JSON or a repr)
    replaced by MASK; anything that is not text is returned as it is."""
    if not isinstance(text, str):
        return text
    for secret in secrets:
        for form in _forms_of(secret):
            text = text.replace(form, MASK)
    return text


def _forms_of(secret: str) -> list[str]:
    forms = {secret, json.dumps(secret)[1:-1], repr(secret)[1:-1],
             json.dumps(secret, ensure_ascii=False)[1:-1]}  # fmt: skip
    return sorted((f for f in forms if f), key=len, reverse=True)


# Celery's reprs of the arguments (Flower, worker logs, the results table) -------------


@signals.before_task_publish.connect
def mask_reprs(sender: str, body=None, headers: dict | None = None, **kwargs) -> None:
    """Every message of a job with secrets, from any sender (web, API, CLI, beat,
    `.delay()`), leaves with masked argsrepr/kwargsrepr headers."""
    if headers is None or not secret_names(sender) or not isinstance(body, list | tuple):
        return
    args, task_kwargs = body[0], body[1]
    headers["argsrepr"] = saferepr(masked_args(sender, args), REPR_MAXSIZE)
    headers["kwargsrepr"] = saferepr(masked(sender, task_kwargs), REPR_MAXSIZE)


# The worker's log lines ---------------------------------------------------------------

# Secrets of the tasks this process ran lately: the worker logs a task's outcome (its
# return value, its exception) after the task's own signals, so they are kept a while.
_recent: deque[str] = deque(maxlen=256)


class ScrubSecrets(logging.Filter):
    """Replaces recent secrets in a record's message and exception text."""

    def filter(self, record: logging.LogRecord) -> bool:
        known = list(_recent)
        if known:
            scrub_record(record, known)
        return True


def scrub_record(record: logging.LogRecord, known: list[str]) -> None:
    try:
        message = record.getMessage()
    except Exception:  # a record that cannot format is left to logging itself
        return
    record.msg, record.args = scrub(message, known), ()
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = scrub(record.exc_text, known)


_installed: list[logging.Handler] = []


def _install_filter() -> None:
    """On every handler of the root logger (and the loggers Celery logs to), once each:
    a filter on a handler sees records propagated from every logger below it."""
    scrubber = _SCRUBBER
    for logger in (logging.getLogger(), logging.getLogger("celery")):
        for handler in logger.handlers:
            if handler not in _installed:
                handler.addFilter(scrubber)
                _installed.append(handler)


_SCRUBBER = ScrubSecrets()


@signals.task_prerun.connect
def remember_secrets(task=None, args=None, kwargs=None, **extra) -> None:
    found = values(getattr(task, "name", None), args, kwargs)
    if found:
        _recent.extend(found)
        _install_filter()
