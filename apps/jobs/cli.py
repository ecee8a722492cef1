"""Helpers for `manage.py jobs`: read key=value, describe jobs and runs, wait for a run.

Starting, cancelling and re-running stay in `dispatch`; validation stays in `catalog`.
"""

import datetime as dt
import getpass
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from typing import Any

from celery import current_app
from django.utils import timezone

from .catalog import Job, ParameterError
from .models import Run, State
from .params import Param, to_json
from .presenting import describe

POLL_INTERVAL = 0.1  # seconds between looks at the run while waiting


def os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def parse_pairs(tokens: Sequence[str]) -> dict[str, str]:
    """`key=value` tokens as a mapping; a token without '=' or a repeated key is refused."""
    pairs: dict[str, str] = {}
    for token in tokens:
        key, sep, value = token.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ParameterError({token: ["expected key=value"]})
        if key in pairs:
            raise ParameterError({key: ["given more than once"]})
        pairs[key] = value
    return pairs


def read_source(source: str) -> str:
    """The text of a file, or of stdin for '-'; bytes that are not UTF-8 are refused
    (ParameterError naming the file), as is a file that cannot be read (OSError)."""
    if source == "-":
        stdin = getattr(sys.stdin, "buffer", sys.stdin)  # bytes if it has them
        data, name = stdin.read(), "stdin"
    else:
        with open(source, "rb") as handle:
            data, name = handle.read(), source
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        reason = f"not UTF-8 text (byte {data[error.start]:#04x} at offset {error.start})"
        raise ParameterError({name: [reason]}) from None


def parameter_sets(text: str) -> list:
    """A JSON array of parameter objects, or one JSON object per line (blank lines
    skipped); the objects are checked by dispatch.start_runs."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):  # too deep: read line by line, refused there
        data = None
    if isinstance(data, list):
        return data
    items = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                items.append(json.loads(line))
            except (ValueError, RecursionError) as error:
                raise ParameterError({f"line {number}": [f"not JSON: {error}"]}) from None
    return items


def find_run(ident: str) -> Run | None:
    """A run by its primary key or its Celery task id."""
    runs = Run.objects.select_related("requested_by")
    if ident.isdigit() and len(ident) < 19:
        found = runs.filter(pk=int(ident)).first()
        if found:
            return found
    return runs.filter(task_id=ident).first()


# Jobs ---------------------------------------------------------------------------------


def param_type(param: Param) -> str:
    if param.is_list:
        return f"list[{param_type(replace(param, is_list=False))}]"
    if param.has_choices:
        return "one of " + "|".join(c or '""' for c in param.current_choices())
    if param.minimum is not None or param.maximum is not None:
        low, high = (to_json(v) if v is not None else "" for v in (param.minimum, param.maximum))
        return f"{param.kind.__name__} {low}..{high}"
    return param.kind.__name__


def describe_param(param: Param) -> str:
    text = f"{param.name}: {param_type(param)}" + (" (secret)" if param.secret else "")
    if param.default is not None and not param.secret:
        return f"{text} = {json.dumps(to_json(param.default))}"
    return f"{text} (required)" if param.required else f"{text} (optional)"


def job_queue(job: Job) -> str:
    return job.queue or current_app.conf.task_default_queue


def job_summary(job: Job) -> dict[str, Any]:
    return {
        "name": job.name,
        "title": job.title,
        "group": job.group,
        "description": job.description,
        "queue": job_queue(job),
        "cancellable": job.cancellable,
        "parameters": job.json_schema(),
    }


def job_lines(job: Job) -> list[str]:
    params = ", ".join(describe_param(p) for p in job.params) or "none"
    cancellable = "yes" if job.cancellable else "no"
    return [
        f"{job.name}",
        f"    {job.title} ({job.group})",
        f"    parameters: {params}",
        f"    queue: {job_queue(job)}; cancellable: {cancellable}",
    ]


# Runs ---------------------------------------------------------------------------------


def run_summary(run: Run) -> dict[str, Any]:
    """Everything `jobs status` shows (`presenting.describe`), as JSON-safe values."""
    view = describe(run)
    return {
        "id": view.id,
        "task_id": view.task_id,
        "job": view.job_name,
        "state": view.state,
        "parameters": view.parameters,
        "args": view.args,
        "source": view.source,
        "requested_by": view.requested_by,
        "schedule": view.schedule_name,
        "queued_at": _iso(view.queued_at),
        "started_at": _iso(view.started_at),
        "finished_at": _iso(view.finished_at),
        "wait_seconds": _seconds(view.wait_seconds),
        "run_seconds": _seconds(view.run_seconds),
        "worker": view.worker,
        "retries": view.retries,
        "progress": asdict(view.progress) if view.progress else None,
        "cancel_requested_at": _iso(view.cancel_requested_at),
        "rerun_of": view.rerun_of,
        "note": view.note,
        "handled_at": _iso(view.handled_at),
        "handled_by": view.handled_by,
        "result": view.result,
        "traceback": view.traceback,
    }


def run_line_summary(run: Run) -> dict[str, Any]:
    """A run in `jobs runs --json`: the record alone (no stored result)."""
    return {"id": run.pk, "task_id": run.task_id, "job": run.job_name, "state": run.state,
            "parameters": run.parameters, "source": run.source, "requested_by": run.who,
            "schedule": run.schedule_name, "worker": run.worker,
            "queued_at": _iso(run.queued_at), "finished_at": _iso(run.finished_at),
            "handled_at": _iso(run.handled_at)}  # fmt: skip


def run_line(run: Run) -> str:
    """A run in `jobs runs`: one line."""
    handled = " (handled)" if run.handled_at else ""
    return (f"{run.pk:>8}  {_iso(run.queued_at)}  {run.state}{handled}  {run.job_name}  "
            f"{run.who}")  # fmt: skip


def failure_group_summary(group) -> dict[str, Any]:
    """A group of `jobs runs --failures --json`, with its filters for `jobs runs`."""
    return {"error_type": group.error_type, "message": group.message, "count": group.count,
            "last_seen": _iso(group.last_seen), "jobs": sorted(group.jobs),
            "filters": group.filters if group.error_type else None}  # fmt: skip


def failure_group_line(group) -> str:
    error = (
        f"{group.error_type}: {group.message}"
        if group.error_type
        else group.message or "(no error stored)"
    )
    return (f"{group.count:>8}  last {_iso(group.last_seen)}  {error[:200]}  "
            f"[{', '.join(sorted(group.jobs))}]")  # fmt: skip


def _iso(moment: dt.datetime | None) -> str | None:
    return timezone.localtime(moment).isoformat() if moment else None


def _seconds(seconds: float | None) -> float | None:
    return round(seconds, 3) if seconds is not None else None


def error_line(summary: dict[str, Any]) -> str:
    """The last line of the traceback: the exception and its message."""
    lines = [line for line in (summary["traceback"] or "").splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def show_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def status_lines(summary: dict[str, Any]) -> list[str]:
    s = summary
    rows = [
        ("task id", s["task_id"]),
        ("parameters", " ".join(f"{k}={show_value(v)}" for k, v in s["parameters"].items())),
        ("args", json.dumps(s["args"]) if s["args"] else ""),
        ("requested", f"{s['requested_by']} via {s['source']}"),
        ("queued", s["queued_at"]),
        ("started", _timed(s["started_at"], "waited", s["wait_seconds"])),
        ("finished", _timed(s["finished_at"], "ran", s["run_seconds"])),
        ("worker", s["worker"]),
        ("retries", str(s["retries"]) if s["retries"] else ""),
        ("progress", _progress_text(s["progress"])),
        ("cancel asked", s["cancel_requested_at"]),
        ("rerun of", f"run {s['rerun_of']}" if s["rerun_of"] else ""),
        ("result", show_value(s["result"]) if s["state"] == State.SUCCEEDED else ""),
        ("error", error_line(s) if s["state"] in (State.FAILED, State.RETRYING) else ""),
        ("note", s["note"]),
        ("handled", f"by {s['handled_by']} at {s['handled_at']}" if s["handled_at"] else ""),
    ]
    head = f"run {s['id']}: {s['job']}: {s['state']}"
    return [head] + [f"  {label + ':':<13} {value}" for label, value in rows if value]


def _timed(moment: str | None, verb: str, seconds: float | None) -> str:
    if not moment:
        return ""
    return f"{moment} ({verb} {seconds:g} s)" if seconds is not None else moment


def _progress_text(progress: dict[str, Any] | None) -> str:
    if not progress:
        return ""
    p = progress
    text = f"{_number(p['done'])}/{_number(p['total'])}"
    if p["percent"] is not None:
        text += f" ({p['percent']}%)"
    return f"{text} {p['message']}".rstrip()


def _number(value: float | str | None) -> str:
    """A stored progress number: "Infinity" or "NaN" as described, "-" for none."""
    if isinstance(value, int | float):
        return f"{value:g}"
    return "-" if value is None else str(value)


# Waiting ------------------------------------------------------------------------------


def wait_until_finished(run: Run, timeout: float, interval: float = POLL_INTERVAL) -> bool:
    """Poll the run record until it finishes (True) or the timeout passes (False)."""
    deadline = time.monotonic() + timeout
    while True:
        run.refresh_from_db()
        if run.is_finished:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def ending(summary: dict[str, Any]) -> str:
    """Why a finished run did not succeed, in one line ('' when it succeeded)."""
    state, pk = summary["state"], summary["id"]
    if state == State.SUCCEEDED:
        return ""
    if state == State.FAILED:
        return f"run {pk} failed: {error_line(summary) or 'no traceback recorded'}"
    detail = f": {summary['note']}" if summary["note"] else ""
    return f"run {pk} was {state}{detail}"
