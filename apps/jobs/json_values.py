"""What a JSON value given to a job may be: one rule for every door.

A job's parameters, a schedule's args and kwargs, and a run filter's value are stored
as JSON in the database (SQLite's JSON_VALID check, PostgreSQL's jsonb) and sent in a
Celery message. Python's json module reads more than that: `NaN` and `Infinity`, a
number too large for a double (`1e309` becomes inf), a lone surrogate (`"\\ud800"`),
and nesting as deep as the interpreter's recursion allows. None of them can be stored
(PostgreSQL's jsonb cannot hold `\\u0000` either), so each is refused where it comes in:
`loads` reads JSON text by this rule, `problem` judges a value already read.

Rows written before the rule may still hold a lone surrogate, and a job's result may
be a number that is not finite: `printable` replaces the one and names the other, for a
page (which could not otherwise be encoded) and for JSON a strict reader accepts.

A stored JSON text (a job's result, as Celery wrote it, or a row written by hand) is
read for a reader by `stored`: every page, the API, the CLI and the Tasks API call it.
A text it cannot read (not JSON, or nested deeper than MAX_DEPTH) is shown as the
marker `unreadable` gives, with one log line, never an exception.
"""

import json
import logging
import math
import re
from typing import Any

log = logging.getLogger(__name__)

MAX_DEPTH = 100

_SURROGATE = re.compile("[\ud800-\udfff]")


class NotStorable(ValueError):
    """JSON that reads, but as a value no database stores (see `problem`)."""


def problem(value: Any) -> str | None:
    """Why `value` cannot be stored as JSON, or None: a number that is not finite, a
    lone surrogate or NUL in a string (or an object's key), or nesting deeper than
    MAX_DEPTH; with where it is (`at ["a"][0]`). Walked without recursion, so any
    depth is judged, not crashed on."""
    pending = [(value, 1, "")]
    while pending:
        item, depth, where = pending.pop()
        if isinstance(item, dict | list | tuple):
            if depth > MAX_DEPTH:
                return f"nested deeper than {MAX_DEPTH} levels"
            keys = list(item) if isinstance(item, dict) else []
            reason = next(filter(None, map(_text_problem, keys)), None)
            if reason:
                return _at(f"{reason} (in a key)", where)
            pairs = item.items() if isinstance(item, dict) else enumerate(item)
            pending.extend((child, depth + 1, f"{where}[{json.dumps(key)}]")
                           for key, child in reversed(list(pairs)))  # fmt: skip
        elif reason := _scalar_problem(item):
            return _at(reason, where)
    return None


def _at(reason: str, where: str) -> str:
    return f"{reason} (at {where})" if where else reason


def _scalar_problem(value: Any) -> str | None:
    if isinstance(value, float) and not math.isfinite(value):
        return (
            f"numbers must be finite: {_number_name(value)} (or a number beyond "
            "about 1.8e308) cannot be stored"
        )
    if isinstance(value, str):
        return _text_problem(value)
    return None


def _text_problem(text: Any) -> str | None:
    if not isinstance(text, str):
        return None
    if found := _SURROGATE.search(text):
        return f"a lone surrogate (\\u{ord(found.group()):04x}) is not text; send UTF-8"
    if "\x00" in text:
        return "the NUL character (\\u0000) cannot be stored"
    return None


def _number_name(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def check(value: Any) -> Any:
    """`value` as it is, or NotStorable saying why it cannot be stored."""
    reason = problem(value)
    if reason:
        raise NotStorable(reason)
    return value


def loads(text: str | bytes) -> Any:
    """JSON text read by the rule: ValueError if it is not JSON (json.JSONDecodeError,
    or NotStorable for NaN, Infinity, a number too large, a lone surrogate, too deep)."""
    try:
        value = json.loads(text, parse_constant=refuse_constant, parse_float=_finite_float)
    except RecursionError:
        raise NotStorable(f"nested deeper than {MAX_DEPTH} levels") from None
    return check(value)


class Unreadable(ValueError):
    """A stored JSON text that cannot be read: not JSON, or nested too deep."""


def read_stored(text: str | bytes) -> Any:
    """A stored JSON text as data, NaN and Infinity included (a job's result may be
    one; `printable` names it); Unreadable if it is not JSON or is nested deeper than
    MAX_DEPTH (judged without recursion, so any depth is refused, not crashed on)."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise Unreadable(f"nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as error:  # (JSONDecodeError, UnicodeDecodeError)
        raise Unreadable(f"not JSON: {error}") from None
    if _deeper_than_max(value):
        raise Unreadable(f"nested deeper than {MAX_DEPTH} levels")
    return value


def stored(text: str | bytes) -> Any:
    """A stored JSON text for showing: its value (`read_stored`), or, when it cannot be
    read, an UnreadableMarker saying why, logged once. Never raises."""
    try:
        return read_stored(text)
    except Unreadable as error:
        log.warning("stored value not readable (%s): %.80r", error, text)
        return unreadable(str(error))


class UnreadableMarker(str):
    """What `stored` gives for a text it cannot read: a string that says so (shown as
    any string is) and that a caller can tell apart from a stored string."""


def unreadable(reason: str) -> UnreadableMarker:
    return UnreadableMarker(f"(stored value not readable: {reason})")


def _deeper_than_max(value: Any) -> bool:
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                return True
            children = item.values() if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)
    return False


def refuse_constant(name: str):
    """json.loads' parse_constant: NaN, Infinity and -Infinity are not JSON numbers."""
    raise NotStorable(f"{name} is not a JSON number: numbers must be finite")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise NotStorable(f"{text} is too large a number (at most about 1.8e308)")
    return number


def printable(value: Any) -> Any:
    """`value` as a page, a terminal or a strict JSON reader can show it: each lone
    surrogate in its strings (and keys) replaced by U+FFFD, each number that is not
    finite (anywhere in it) by its name, the string "NaN", "Infinity" or "-Infinity"
    (a job's result may be one; no JSON holds it). A value without either is returned
    as it is."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, float):
        return value if math.isfinite(value) else _number_name(value)
    try:
        text = json.dumps(value, ensure_ascii=False, default=str, allow_nan=False)
    except ValueError:  # a number that is not finite: written as NaN, named when read
        text = json.dumps(value, ensure_ascii=False, default=str)
    else:
        if not _SURROGATE.search(text):
            return value
    return json.loads(_SURROGATE.sub("\ufffd", text), parse_constant=str)
