"""Which runs: the filters of /runs/, `GET /api/runs`, `manage.py jobs runs` and the bulk
actions, read and applied in one place.

Every entry point turns its input into query-string pairs (the page's own URL, the
API's query, the CLI's options) and calls `read(pairs)`, which checks them with
`RunFilterForm` and the parameter conditions below and returns a `RunFilter`, or raises
`FilterError` naming each bad field. `RunFilter.apply(runs)` narrows a QuerySet (the
caller first keeps the runs the user may see: `Run.objects.visible_to`), and
`RunFilter.query()` writes it back as the canonical query string that a bulk action's
confirmation carries.

Parameter conditions (`param.<name>=<value>`, `param.<name>~<value>`):

- `=` is equality, type-aware: `42` matches the number 42 and the string "42"; `true`
  matches the boolean and the string; anything else matches the string only. On
  PostgreSQL each is `parameters @> '{"name": value}'`, served by the GIN index
  `run_parameters_gin` (jsonb_path_ops); on SQLite, JSON_EXTRACT (no index).
- `~` is a case-insensitive substring of the value as text (not indexed: the list
  reads newest first and stops after one page, fast when matches are common).
"""

import datetime as dt
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from urllib.parse import urlencode

from django import forms
from django.db import connection
from django.db.models import Q, QuerySet, Value
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import Lower, StrIndex
from django.http import QueryDict
from django.utils import timezone
from django_celery_results.models import TaskResult

from . import json_values
from .dates import moment_error
from .models import Source, State
from .params import no_control_characters

PARAM_PREFIX = "param."
MAX_PARAM_CONDITIONS = 10
MAX_VALUE_LENGTH = 200
MAX_NAME_LENGTH = 100
# Unbounded, so that a name too long is read whole and refused as too long (not split
# after 100 characters into a name and an "operator").
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
OPERATORS = {"=": "equals", "~": "contains"}
MAX_STATES = len(State.values)


class FilterError(ValueError):
    """Filters refused; `errors` maps each field (or `param.<name>`) to messages."""

    def __init__(self, errors: dict[str, list[str]]):
        self.errors = errors
        super().__init__(self.one_line())

    def one_line(self) -> str:
        return "; ".join(f"{name}: {' '.join(msgs)}" for name, msgs in self.errors.items())


# Parameter conditions -----------------------------------------------------------------


@dataclass(frozen=True)
class ParamCondition:
    name: str
    op: str  # "=" or "~"
    value: str

    def pair(self) -> tuple[str, str]:
        """As a query-string pair: param.name=value, param.name~=value."""
        suffix = "" if self.op == "=" else self.op
        return f"{PARAM_PREFIX}{self.name}{suffix}", self.value

    def q(self, alias: str) -> tuple[dict, Q]:
        """(alias expressions, condition) for QuerySet.alias(...).filter(...)."""
        if self.op == "~":
            # strpos(), not LIKE: PostgreSQL guesses a long LIKE pattern matches almost
            # nothing and scans the whole table; for a function it guesses a third of
            # the rows, so the list walks the newest-first index and stops after a page.
            text = Lower(KeyTextTransform(self.name, "parameters"))
            return {alias: StrIndex(text, Lower(Value(self.value)))}, Q(**{f"{alias}__gt": 0})
        candidates = [self.value, *typed_values(self.value)]
        if connection.vendor == "postgresql":
            # Containment, so that the GIN index (jsonb_path_ops) serves it.
            conditions = [Q(parameters__contains={self.name: c}) for c in candidates]
            return {}, _any(conditions)
        conditions = [Q(**{alias: c}) for c in candidates]
        return {alias: KeyTransform(self.name, "parameters")}, _any(conditions)


def typed_values(raw: str) -> list:
    """The non-string JSON values `raw` also stands for: a number or a boolean.

    Only values a run's parameters can hold (apps/jobs/json_values.py): `1e309`, like
    `NaN`, stands for the text alone, since no stored number is infinite (as a number,
    it was an OperationalError on SQLite, "malformed JSON").
    """
    try:
        value = json_values.loads(raw)
    except ValueError:
        return []
    return [value] if isinstance(value, bool | int | float) else []


def _any(conditions: list[Q]) -> Q:
    combined = Q()
    for condition in conditions:
        combined |= condition
    return combined


def param_condition(name: str, op: str, value: str) -> ParamCondition:
    """One condition, checked: a parameter's name, a known operator, a short plain value."""
    shown = name if len(name) <= MAX_NAME_LENGTH else f"{name[:MAX_NAME_LENGTH]}..."
    label = f"{PARAM_PREFIX}{shown}"
    if not NAME.fullmatch(name):
        raise FilterError({label: [f"a parameter name is letters, digits and _ "
                                   f"(at most {MAX_NAME_LENGTH})"]})  # fmt: skip
    if len(name) > MAX_NAME_LENGTH:
        raise FilterError({label: [f"a parameter name is at most {MAX_NAME_LENGTH} characters "
                                   f"(this one has {len(name)})"]})  # fmt: skip
    if op not in OPERATORS:
        raise FilterError({label: [f"unknown operator {op!r}: use = (equals) or ~ (contains)"]})
    if len(value) > MAX_VALUE_LENGTH:
        raise FilterError({label: [f"at most {MAX_VALUE_LENGTH} characters"]})
    try:
        no_control_characters(multiline=False)(value)
    except forms.ValidationError as error:
        raise FilterError({label: list(error.messages)}) from None
    if op == "~" and not value:
        raise FilterError({label: ["give the text to look for after ~"]})
    return ParamCondition(name, op, value)


def condition_from_pair(key: str, value: str) -> ParamCondition:
    """From a query-string pair: `param.k=v`, `param.k~=v`, or `param.k~v` written
    without '=' (the pair is then (`param.k~v`, ''))."""
    rest = key[len(PARAM_PREFIX) :]
    match = NAME.match(rest)
    name = match.group() if match else ""
    tail = rest[len(name) :]
    if not name:
        return param_condition(rest, "=", value)  # refused: not a name
    if tail == "":
        return param_condition(name, "=", value)
    if tail.startswith("~"):
        text = tail[1:] + (f"={value}" if tail[1:] and value else value)
        return param_condition(name, "~", text)
    return param_condition(name, tail[:1], value)  # refused: unknown operator


def condition_from_token(token: str) -> ParamCondition:
    """From the CLI: `k=v` or `k~v`."""
    match = NAME.match(token)
    name = match.group() if match else ""
    op, value = token[len(name) : len(name) + 1], token[len(name) + 1 :]
    if not name:
        raise FilterError({"param": [f"expected name=value or name~value, got {token!r}"]})
    return param_condition(name, op, value)


# The form of the standard filters -----------------------------------------------------


def _any_choice(choices) -> list[tuple[str, str]]:
    return [("", "any"), *choices]


class StatesField(forms.MultipleChoiceField):
    """Several states: repeated (?state=failed&state=queued), comma-separated, or one."""

    widget = forms.SelectMultiple(attrs={"size": 3})

    def to_python(self, value):
        if isinstance(value, str):
            value = [value]
        values = [part.strip() for v in value or () for part in str(v).split(",")]
        return list(dict.fromkeys(v for v in values if v))


class MomentField(forms.CharField):
    """A day (2026-12-05: the whole day, in the site's time zone) or an ISO 8601 moment
    (2026-12-05T14:30, with or without an offset)."""

    def to_python(self, value):
        text = super().to_python(value)
        if not text:
            return None
        try:
            return dt.date.fromisoformat(text) if len(text) == 10 else _moment(text)
        except ValueError:
            raise forms.ValidationError(
                "Enter a date (YYYY-MM-DD) or a date and time (YYYY-MM-DDTHH:MM)."
            ) from None

    def validate(self, value):
        super().validate(value)
        error = value is not None and moment_error(value)
        if error:
            raise forms.ValidationError(error)


def _moment(text: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(text)
    return moment if moment.tzinfo else timezone.make_aware(moment)


def _text(max_length: int, **kwargs) -> forms.CharField:
    return forms.CharField(
        required=False, max_length=max_length,
        validators=[no_control_characters(multiline=False)], **kwargs,
    )  # fmt: skip


HANDLED = [("", "any"), ("no", "not handled"), ("yes", "handled")]


class RunFilterForm(forms.Form):
    """Filters of /runs/ (and, through `read`, of the API, the CLI and bulk actions).
    On the page an invalid value is shown as an error and not applied."""

    job = _text(255, widget=forms.TextInput(attrs={"list": "job-names"}))
    state = StatesField(required=False, choices=State.choices)
    source = forms.ChoiceField(required=False, choices=_any_choice(Source.choices))
    user = _text(150, label="Started by", help_text="user name")
    worker = _text(200)
    schedule = _text(200)
    date_from = MomentField(required=False, label="From",
                            widget=forms.DateInput(attrs={"type": "date"}))  # fmt: skip
    date_to = MomentField(required=False, label="To",
                          widget=forms.DateInput(attrs={"type": "date"}))  # fmt: skip
    handled = forms.ChoiceField(required=False, choices=HANDLED, label="Failure handled")
    error_type = _text(200, widget=forms.HiddenInput)
    error_message = _text(2000, widget=forms.HiddenInput)

    def apply(self, runs: QuerySet) -> QuerySet:
        """The valid standard filters (an invalid one is left out)."""
        self.is_valid()
        return standard_filter(self.cleaned_data).apply(runs)


def standard_filter(data: dict) -> "RunFilter":
    return RunFilter(
        states=tuple(data.get("state") or ()), job=data.get("job") or "",
        source=data.get("source") or "", user=data.get("user") or "",
        worker=data.get("worker") or "", schedule=data.get("schedule") or "",
        since=_start(data.get("date_from")), until=_end(data.get("date_to")),
        handled={"yes": True, "no": False}.get(data.get("handled") or ""),
        error_type=data.get("error_type") or "", error_message=data.get("error_message") or "",
    )  # fmt: skip


def _start(moment) -> dt.datetime | None:
    if moment is None or isinstance(moment, dt.datetime):
        return moment
    return timezone.make_aware(dt.datetime.combine(moment, dt.time.min))


def _end(moment) -> dt.datetime | None:
    """The exclusive end: a day includes all of itself; a moment is included."""
    if moment is None:
        return None
    if isinstance(moment, dt.datetime):
        return moment + dt.timedelta(microseconds=1)
    return _start(moment + dt.timedelta(days=1))


# The filter ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RunFilter:
    states: tuple[str, ...] = ()
    job: str = ""
    source: str = ""
    user: str = ""
    worker: str = ""
    schedule: str = ""
    since: dt.datetime | None = None  # queued at or after
    until: dt.datetime | None = None  # queued before
    handled: bool | None = None
    error_type: str = ""  # with error_message: one group of "failed for good"
    error_message: str = ""
    params: tuple[ParamCondition, ...] = field(default=())
    pairs: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    def apply(self, runs: QuerySet) -> QuerySet:
        exact = {
            "state__in": list(self.states),
            "job_name": self.job,
            "source": self.source,
            "requested_by__username": self.user,
            "worker": self.worker,
            "schedule_name": self.schedule,
            "queued_at__gte": self.since,
            "queued_at__lt": self.until,
        }
        runs = runs.filter(**{key: value for key, value in exact.items() if value})
        if self.source != Source.PIPELINE:
            # A pipeline's steps show on its own page; filtered by source, here too.
            runs = runs.filter(pipeline__isnull=True)
        if self.handled is not None:
            runs = runs.filter(handled_at__isnull=not self.handled)
        if self.error_type:
            runs = runs.filter(task_id__in=error_results(self.error_type, self.error_message))
        for n, condition in enumerate(self.params):
            aliases, where = condition.q(f"_param{n}")
            runs = runs.alias(**aliases).filter(where)
        return runs

    def query(self, **extra: str) -> str:
        """The canonical query string (what a confirmation carries)."""
        return urlencode([*self.pairs, *extra.items()])


def _replace(f: RunFilter, **changes) -> RunFilter:
    return replace(f, **changes)


def error_results(error_type: str, message: str) -> QuerySet:
    """Task ids of results whose stored error is this type and exact message. The
    stored result is Celery's JSON ({"exc_type": ..., "exc_message": [...], ...}); the
    two fragments are matched as JSON text, so quotes in a message cannot forge them. A
    message that is not one string (failures.error_of) is given as its JSON text."""
    rows = TaskResult.objects.filter(result__contains=f'"exc_type": {json.dumps(error_type)}')
    if message:
        fragment = Q(result__contains=f'"exc_message": {json.dumps([message])}')
        if _json_not_one_string(message):
            fragment |= Q(result__contains=f'"exc_message": {message}')
        rows = rows.filter(fragment)
    return rows.values("task_id")


def _json_not_one_string(text: str) -> bool:
    try:
        value = json.loads(text)
    except ValueError:
        return False
    return not (isinstance(value, list) and len(value) == 1 and isinstance(value[0], str))


# Reading ------------------------------------------------------------------------------

PAGING = {"after", "before", "limit"}  # keys of the paging, not filters


def read(pairs: Iterable[tuple[str, str]]) -> RunFilter:
    """A filter from query-string pairs (a QueryDict's `.lists()` flattened, or the
    CLI's); raises FilterError naming each bad field. Paging keys are ignored."""
    query = QueryDict(mutable=True)
    for key, value in pairs:
        if key not in PAGING:
            query.appendlist(key, value)
    conditions, errors = (), {}
    try:
        conditions = read_params(query)
    except FilterError as error:
        errors.update(error.errors)
    named = {key for key in query if key != "param" and not key.startswith(PARAM_PREFIX)}
    errors.update(
        {name: ["unknown filter"] for name in sorted(named - set(RunFilterForm.base_fields))}
    )
    form = RunFilterForm(query)
    if not form.is_valid():
        errors.update({k: [str(m) for m in v] for k, v in form.errors.items()})
    if errors:
        raise FilterError(errors)
    found = standard_filter(form.cleaned_data)
    return _replace(found, params=tuple(conditions), pairs=tuple(canonical(found, conditions)))


def canonical(found: RunFilter, conditions: tuple[ParamCondition, ...]) -> list[tuple[str, str]]:
    pairs = [("state", state) for state in found.states]
    named = {"job": found.job, "source": found.source, "user": found.user,
             "worker": found.worker, "schedule": found.schedule,
             "date_from": _iso(found.since), "date_to": _iso(found.until, end=True),
             "handled": {True: "yes", False: "no"}.get(found.handled, ""),
             "error_type": found.error_type, "error_message": found.error_message}  # fmt: skip
    pairs += [(key, value) for key, value in named.items() if value]
    return pairs + [condition.pair() for condition in conditions]


def _iso(moment: dt.datetime | None, end: bool = False) -> str:
    if moment is None:
        return ""
    if end:
        moment -= dt.timedelta(microseconds=1)
    return moment.isoformat()


def read_query(query) -> RunFilter:
    """From a QueryDict (a request's GET or a posted query string)."""
    return read((key, value) for key, values in query.lists() for value in values)


def read_text(text: str) -> RunFilter:
    """From a query string as text (what a run of the CSV export stores)."""
    return read_query(QueryDict(text))


def check_text(text: str) -> None:
    """A stored query string's check, as a job parameter's Validator (ValueError)."""
    try:
        read_text(text)
    except FilterError as error:
        raise ValueError(error.one_line()) from None


def page_pairs(query) -> list[tuple[str, str]]:
    """The pairs of a QueryDict that /runs/ reads as filters: anything else in its URL
    (paging, a stray key) is left out, as the page leaves it out."""
    known = set(RunFilterForm.base_fields)
    return [(key, value) for key, values in query.lists() for value in values
            if key in known or key == "param" or key.startswith(PARAM_PREFIX)]  # fmt: skip


def read_params(query) -> tuple[ParamCondition, ...]:
    """Only the parameter conditions of a QueryDict (the /runs/ page, whose other
    filters its form reads); raises FilterError."""
    conditions, errors = [], {}
    for key, value in param_pairs(query):
        try:
            if key == "param":  # the page's free field, as on the CLI: k=v or k~v
                conditions.append(condition_from_token(value))
            else:
                conditions.append(condition_from_pair(key, value))
        except FilterError as error:
            errors.update(error.errors)
    if len(conditions) > MAX_PARAM_CONDITIONS:
        errors["param"] = [f"at most {MAX_PARAM_CONDITIONS} parameter conditions"]
    if errors:
        raise FilterError(errors)
    return tuple(conditions)


def param_pairs(query) -> list[tuple[str, str]]:
    """The pairs of a QueryDict that are parameter conditions (a blank `param` field of
    the page's form is no condition)."""
    return [(key, value) for key, values in query.lists() for value in values
            if key.startswith(PARAM_PREFIX) or (key == "param" and value)]  # fmt: skip
