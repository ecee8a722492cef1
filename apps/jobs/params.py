"""A job's parameters, read once from its signature, and their three faces.

One `Param` per argument gives a Django form field (web and admin), a JSON schema
(API) and, through the same form, the parser for the CLI's `key=value` strings.

Bounds and choices are declared once, in the signature, with `typing.Annotated`:

    def prune_runs(older_than_days: Annotated[int, Range(1, 3650)]): ...
    def http_check(url: Annotated[str, MaxLength(2048), Validator(validate_url)]): ...
    def run_command(command: Annotated[str, Choices(allowed_commands)]): ...

Text refuses control characters unless it is declared `Multiline()` (then tab, CR and
LF are allowed); floats refuse NaN and infinity (Django's FloatField).

A secret (a password, a token) is declared `token: Secret[str]` (or
`Annotated[str, Secret()]`): a password field, `writeOnly` in the JSON schema, and
shown and stored only masked outside the Celery message (apps/jobs/secrets.py).
"""

import contextlib
import datetime as dt
import enum
import inspect
import json
import math
import types
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from django import forms
from django.core import validators
from django.core.exceptions import ValidationError
from django.forms.fields import JSONString
from django.utils.dateparse import parse_duration

MAX_LIST_ITEMS = 1000
MAX_TEXT_LENGTH = 10_000


# Declarations for `Annotated[...]` ---------------------------------------------------


@dataclass(frozen=True)
class Range:
    """Inclusive bounds of a number, date or duration: `Annotated[int, Range(1, 3650)]`."""

    min: Any = None
    max: Any = None


@dataclass(frozen=True)
class MaxLength:
    """At most this many characters (for a list: in each item)."""

    max: int


@dataclass(frozen=True)
class MaxItems:
    """At most this many items in a list."""

    max: int


@dataclass(frozen=True)
class Multiline:
    """Text that may hold tab, CR and LF (other control characters are still refused)."""


@dataclass(frozen=True)
class Choices:
    """Choices known only at run time, e.g. from settings: `Choices(allowed_commands)`."""

    source: Callable[[], Iterable[str]]


@dataclass(frozen=True)
class Validator:
    """A check of one value; it raises ValueError (or ValidationError) with the reason."""

    check: Callable[[Any], Any]


@dataclass(frozen=True)
class Secret:
    """A value never shown or stored in clear: `token: Secret[str]` is
    `Annotated[str, Secret()]` (`Annotated[str, Secret]` works too)."""

    def __class_getitem__(cls, kind: Any) -> Any:
        return typing.Annotated[kind, cls()]


@dataclass(frozen=True)
class Param:
    name: str
    kind: type
    required: bool
    default: Any = None
    choices: tuple[str, ...] = ()
    is_list: bool = False
    minimum: Any = None
    maximum: Any = None
    max_length: int | None = None
    max_items: int | None = None
    multiline: bool = False
    choices_from: Callable[[], Iterable[str]] | None = None
    checks: tuple[Callable[[Any], Any], ...] = ()
    secret: bool = False
    nullable: bool = False  # typed Optional (`int | None`): the only kind that takes None

    @property
    def label(self) -> str:
        return self.name.replace("_", " ").capitalize()

    def current_choices(self) -> tuple[str, ...]:
        """The declared choices; those of a `Choices(...)` source are read each time."""
        if self.choices_from is not None:
            return tuple(str(c) for c in self.choices_from())
        return self.choices

    @property
    def has_choices(self) -> bool:
        return bool(self.choices) or self.choices_from is not None


def params_from_signature(fn) -> tuple[Param, ...]:
    hints = typing.get_type_hints(fn, include_extras=True)
    params = []
    for name, p in inspect.signature(fn).parameters.items():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or name == "self":
            continue
        annotation = hints.get(name, str)
        required = p.default is inspect.Parameter.empty
        default = None if required else p.default
        param = _param(name, annotation, required, default)
        check_default(param)
        params.append(param)
    return tuple(params)


def _param(name: str, annotation: Any, required: bool, default: Any) -> Param:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        inner, *extras = typing.get_args(annotation)
        return _declared(_param(name, inner, required, default), extras)
    if origin in (typing.Union, types.UnionType) and _is_optional(annotation):
        # `x: date | None = None`: an optional parameter of the inner type.
        (inner,) = (a for a in typing.get_args(annotation) if a is not type(None))
        return replace(_param(name, inner, required, default), nullable=True)
    if origin is typing.Literal:
        choices = tuple(str(c) for c in typing.get_args(annotation))
        return Param(name, str, required, default, choices=choices)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        choices = tuple(str(member.value) for member in annotation)
        default = default.value if isinstance(default, enum.Enum) else default
        return Param(name, annotation, required, default, choices=choices)
    if origin is list:
        return _list_param(name, annotation, required, default)
    if annotation not in FIELD_BUILDERS:
        raise TypeError(f"parameter {name!r}: unsupported type {annotation!r}")
    return Param(name, annotation, required, default)


def _list_param(name: str, annotation: Any, required: bool, default: Any) -> Param:
    """`list[X]`: each item is a parameter of type X (with X's own bounds), in a list."""
    (item_type,) = typing.get_args(annotation) or (str,)
    item = _param(name, item_type, True, None)
    if item.is_list:
        raise TypeError(f"parameter {name!r}: a list of lists is not supported")
    return replace(item, required=required, default=default, is_list=True, nullable=False)


def _is_optional(annotation: Any) -> bool:
    args = typing.get_args(annotation)
    return type(None) in args and len(args) == 2


def _declared(param: Param, extras: Iterable[Any]) -> Param:
    """Apply the `Annotated` declarations; anything else in it is ignored."""
    for extra in extras:
        if isinstance(extra, Range):
            param = replace(param, minimum=extra.min, maximum=extra.max)
        elif isinstance(extra, MaxLength):
            param = replace(param, max_length=extra.max)
        elif isinstance(extra, MaxItems):
            param = replace(param, max_items=extra.max)
        elif isinstance(extra, Multiline):
            param = replace(param, multiline=True)
        elif isinstance(extra, Choices):
            param = replace(param, choices_from=extra.source)
        elif isinstance(extra, Validator):
            param = replace(param, checks=(*param.checks, extra.check))
        elif extra is Secret or isinstance(extra, Secret):
            param = replace(param, secret=True)
    return param


def check_default(param: Param) -> None:
    """A default the job's own parameter would refuse (outside the declared bounds, a
    NaN or infinite number) is a mistake in the job, found at import."""
    if param.default is None:
        return
    try:
        check_value(param, param.default)
    except ValueError as exc:
        raise TypeError(f"parameter {param.name!r}: default {exc}") from None


def check_value(param: Param, value: Any) -> None:
    """The declared bounds of one typed value (the worker's last look before a run).

    Raises ValueError naming the bound (and the item, in a list); None (an omitted
    optional value) passes.
    """
    if value is None:
        return
    if not param.is_list:
        return _check_one(param, value)
    if not isinstance(value, list | tuple):
        raise ValueError(f"expected a list, got {type(value).__name__}")
    limit = param.max_items or MAX_LIST_ITEMS
    if len(value) > limit:
        raise ValueError(f"{len(value)} items, more than the maximum {limit}")
    for index, item in enumerate(value, 1):
        try:
            _check_one(param, item)
        except ValueError as exc:
            raise ValueError(f"item {index}: {exc}") from None


def _finite(number: float | Decimal) -> bool:
    return number.is_finite() if isinstance(number, Decimal) else math.isfinite(number)


def _check_one(param: Param, value: Any) -> None:
    if isinstance(value, float | Decimal) and not _finite(value):
        raise ValueError(f"{value!r} is not a finite number")
    if param.minimum is not None and value < param.minimum:
        raise ValueError(f"{value!r} is less than the minimum {param.minimum!r}")
    if param.maximum is not None and value > param.maximum:
        raise ValueError(f"{value!r} is more than the maximum {param.maximum!r}")
    if isinstance(value, str):
        if param.max_length is not None and len(value) > param.max_length:
            raise ValueError(f"{len(value)} characters, more than {param.max_length}")
        bad = _control_character(value, param.multiline)
        if bad:
            raise ValueError(f"control character {bad!r} is not allowed")


_ALLOWED_IN_MULTILINE = frozenset("\t\r\n")


def _control_character(text: str, multiline: bool) -> str | None:
    """The first control character (C0, DEL, C1) the text may not hold, or None."""
    allowed = _ALLOWED_IN_MULTILINE if multiline else frozenset()
    for char in text:
        code = ord(char)
        if (code < 0x20 or 0x7F <= code < 0xA0) and char not in allowed:
            return char
    return None


def no_control_characters(multiline: bool) -> Callable[[str], None]:
    def validate(value: str) -> None:
        bad = _control_character(str(value), multiline)
        if bad is not None:
            raise ValidationError(f"control characters such as {bad!r} are not allowed")

    return validate


def checked(check: Callable[[Any], Any], max_length: int | None) -> Callable[[Any], None]:
    """A Validator's ValueError as a form ValidationError (so it names the field).

    Text over its length limit is left to that limit's message (not judged, not echoed).
    """

    def validate(value: Any) -> None:
        if max_length is not None and isinstance(value, str) and len(value) > max_length:
            return
        try:
            check(value)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None

    return validate


# Django form fields -------------------------------------------------------------------


class ListField(forms.Field):
    """A list of values of one kind: one per line (or comma-separated) in a form, a JSON
    array from the API or the CLI. Each item is cleaned by `item`, the field a single
    value of that kind has, so an item's type and bounds are checked as a scalar's are."""

    widget = forms.Textarea(attrs={"rows": 3})

    def __init__(self, *, item: forms.Field, max_items: int = MAX_LIST_ITEMS, **kwargs):
        self.item = item
        self.max_items = max_items
        super().__init__(**kwargs)

    def clean(self, value):
        items = list_items(value)
        if self.required and not items:
            raise ValidationError(self.error_messages["required"], code="required")
        if not items and (value is None or _blank(value)):
            return None  # nothing given (a cleared box): the parameter's default
        if len(items) > self.max_items:
            raise ValidationError(f"at most {self.max_items} items, got {len(items)}")
        cleaned, errors = [], []
        for index, item in items:
            try:
                cleaned.append(self.item.clean(item))
            except ValidationError as error:
                errors.extend(f"item {index}: {message}" for message in error.messages)
        if errors:
            raise ValidationError(errors[:MAX_ITEM_ERRORS])
        return cleaned

    def prepare_value(self, value):
        if isinstance(value, list | tuple):
            return "\n".join(str(to_json(item)) for item in value)
        return value


MAX_ITEM_ERRORS = 3  # a thousand bad items need not give a thousand messages


def list_items(value: Any) -> list[tuple[int, Any]]:
    """The items of a list parameter with their positions (from 1), blank ones left out.

    A JSON array (from the API, or as text: `numbers=[1,2,3]` on the command line) gives
    its items as they are; other text is split at commas and line ends."""
    if isinstance(value, str) and value.lstrip().startswith("["):
        with contextlib.suppress(ValueError, RecursionError):  # not JSON: split as text
            value = json.loads(value)
    if value is None:
        return []
    if isinstance(value, list | tuple):
        items = list(value)
        for index, item in enumerate(items, 1):
            if isinstance(item, list | tuple | dict):
                raise ValidationError(f"item {index}: expected a value, not a list or object")
    else:
        items = [line.strip() for line in str(value).replace(",", "\n").splitlines()]
    return [(i, item) for i, item in enumerate(items, 1) if not _blank(item)]


def _blank(item: Any) -> bool:
    return isinstance(item, str) and not item.strip()


class StrictBooleanField(forms.Field):
    """A list item of a `list[bool]`: true or false, and not any other word."""

    def to_python(self, value):
        if isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return parse_bool(value)
            except ValueError as error:
                raise ValidationError(str(error)) from None
        raise ValidationError(f"expected true or false, got {value!r}")


TRUE_WORDS = frozenset({"true", "1", "yes", "on"})
FALSE_WORDS = frozenset({"false", "0", "no", "off", ""})


def parse_bool(raw: str) -> bool:
    """A boolean from text (a form, the command line); any other word is a ValueError."""
    lowered = raw.strip().lower()
    if lowered in TRUE_WORDS:
        return True
    if lowered in FALSE_WORDS:
        return False
    raise ValueError(f"expected true or false, got {raw!r}")


class StrictDurationField(forms.DurationField):
    """Accepts Django's duration strings ('1:30:00', 'P1D') and plain seconds."""

    def to_python(self, value):
        if isinstance(value, int | float) and not isinstance(value, bool):
            return dt.timedelta(seconds=value)
        if isinstance(value, str) and parse_duration(value.strip()) is None:
            raise ValidationError("Enter a duration like 90, 1:30:00 or P1DT2H.")
        return super().to_python(value)


FIELD_BUILDERS: dict[type, Any] = {
    int: lambda **kw: forms.IntegerField(**kw),
    float: lambda **kw: forms.FloatField(**kw),
    Decimal: lambda **kw: forms.DecimalField(**kw),
    str: lambda **kw: forms.CharField(**{"max_length": MAX_TEXT_LENGTH, **kw}),
    bool: lambda **kw: forms.BooleanField(**{**kw, "required": False}),
    dt.date: lambda **kw: forms.DateField(widget=forms.DateInput(attrs={"type": "date"}), **kw),
    dt.datetime: lambda **kw: forms.DateTimeField(
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}), **kw
    ),
    dt.timedelta: lambda **kw: StrictDurationField(**kw),
}


def form_field(param: Param) -> forms.Field:
    options = {"required": param.required, "label": param.label}
    if param.default is not None and not param.secret:
        options["initial"] = param.default
    if param.is_list:
        return _list_field(param, options)
    options["validators"] = _validators(param)
    if param.has_choices:
        return forms.ChoiceField(choices=_choice_pairs(param), **options)
    if param.kind is str:
        options["max_length"] = param.max_length or MAX_TEXT_LENGTH
    field = FIELD_BUILDERS[param.kind](**options)
    _show_bounds(field, param)
    if param.secret:  # never sent back to the browser, even with a form's errors
        field.widget = forms.PasswordInput(render_value=False, attrs=field.widget.attrs)
    return field


def _list_field(param: Param, options: dict) -> ListField:
    """Each item is a required value of the item's kind, with the item's bounds."""
    one = replace(param, is_list=False, required=True, default=None, secret=False)
    item = StrictBooleanField() if param.kind is bool else form_field(one)
    return ListField(item=item, max_items=param.max_items or MAX_LIST_ITEMS, **options)


def _choice_pairs(param: Param) -> Any:
    """The choices, after a blank one ("any", which takes the default) unless the parameter
    is required; those of a `Choices(...)` source are read again each time the form
    renders or validates (settings may change)."""
    if param.choices_from is None:
        return _with_blank(param, param.choices)
    return lambda: _with_blank(param, param.current_choices())


def _with_blank(param: Param, choices: Iterable[str]) -> list[tuple[str, str]]:
    blank = [] if param.required else [("", "---------")]
    return blank + [(c, c) for c in choices if param.required or c != ""]


def _validators(param: Param) -> list:
    found = []
    if param.minimum is not None:
        found.append(validators.MinValueValidator(param.minimum))
    if param.maximum is not None:
        found.append(validators.MaxValueValidator(param.maximum))
    if param.kind is str:
        found.append(no_control_characters(param.multiline))
    limit = param.max_length or (MAX_TEXT_LENGTH if param.kind is str else None)
    found.extend(checked(check, limit) for check in param.checks)
    return found


def _show_bounds(field: forms.Field, param: Param) -> None:
    """min/max on number inputs, so the browser says so before the server does."""
    if param.kind in (int, float, Decimal):
        for attr, value in (("min", param.minimum), ("max", param.maximum)):
            if value is not None:
                field.widget.attrs[attr] = value


# Values as submitted: text typed by a person, or JSON data ------------------------------

REQUIRED = "This field is required."


def given_value(param: Param, value: Any, *, text: bool) -> Any:
    """A submitted value as the parameter's form field is to take it; ValueError says why
    it cannot be.

    Blank (null, or text of only spaces) is the parameter's default; None for one typed
    Optional (`int | None`), which alone takes None; refused for a required one.
    `text`: typed by a person (`key=value` on a command line), read by the form's rules
    (a bool from its words, JSON parsed once). Otherwise a JSON value (the API, the Tasks
    API, a stored run or schedule, the web form's typed values), taken as it is: its JSON
    type must fit (a bool is true or false, a number is never a bool, text is a string
    or a number, read as its JSON text), and a string for a JSON parameter stays a string.
    """
    if _is_blank(param, value, text):
        if param.nullable:
            return None
        if param.required:
            raise ValueError(REQUIRED)
        return to_json(param.default)
    if text and isinstance(value, str):
        if param.kind is bool and not param.is_list:
            return parse_bool(value)
        return value
    return _given_data(param, value)


def _takes_json(param: Param) -> bool:
    return getattr(param.kind, "takes_objects", False)


def _is_blank(param: Param, value: Any, text: bool) -> bool:
    if value is None:
        return True
    return isinstance(value, str) and not value.strip() and (text or not _takes_json(param))


def _given_data(param: Param, value: Any) -> Any:
    if _takes_json(param):
        return JSONString(value) if isinstance(value, str) else value  # a string, not JSON text
    if not param.is_list:
        return _given_item(param, value)
    if not isinstance(value, list | tuple):
        raise ValueError(f"expected a list, got {json_type(value)}")
    items = []
    for index, item in enumerate(value, 1):
        if isinstance(item, list | tuple | dict):
            raise ValueError(f"item {index}: expected a value, not a list or object")
        try:
            items.append(item if item is None else _given_item(param, item))
        except ValueError as error:
            raise ValueError(f"item {index}: {error}") from None
    return items


def _given_item(param: Param, value: Any) -> Any:
    """One JSON value of a parameter (or a list's item) that takes no JSON."""
    if isinstance(value, dict):
        raise ValueError("expected a value, not an object")
    if isinstance(value, list | tuple):
        raise ValueError("expected a value, not a list")
    if param.kind is bool:
        if not isinstance(value, bool):
            raise ValueError(f"expected true or false, got {json_type(value)}")
        return value
    if isinstance(value, bool):
        expected = "text" if _takes_text(param) else "a number" if _number(param) else "a value"
        raise ValueError(f"expected {expected}, got {json_type(value)}")
    if _takes_text(param) and isinstance(value, int | float):
        return json.dumps(value)  # a number for a text parameter: its JSON text, 42 -> "42"
    return value


def _takes_text(param: Param) -> bool:
    return param.kind is str or param.has_choices


def _number(param: Param) -> bool:
    return param.kind in (int, float, Decimal, dt.timedelta)


def json_type(value: Any) -> str:
    """A JSON value as a message names it: true, a number, 'a text', a list, an object."""
    if isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, int | float | Decimal):
        return "a number"
    if isinstance(value, str):
        return repr(value) if len(value) <= 40 else "a text"
    return "a list" if isinstance(value, list | tuple) else "an object"


# JSON schema --------------------------------------------------------------------------

_SCHEMA = {
    int: {"type": "integer"},
    float: {"type": "number"},
    Decimal: {"type": "string", "format": "decimal", "pattern": r"^-?\d+(\.\d+)?$"},
    str: {"type": "string", "maxLength": MAX_TEXT_LENGTH},
    bool: {"type": "boolean"},
    dt.date: {"type": "string", "format": "date"},
    dt.datetime: {"type": "string", "format": "date-time"},
    dt.timedelta: {"type": "string", "format": "duration", "description": "e.g. 1:30:00"},
}


def json_schema(params: tuple[Param, ...]) -> dict:
    properties = {p.name: _property_schema(p) for p in params}
    return {
        "type": "object",
        "properties": properties,
        "required": [p.name for p in params if p.required],
        "additionalProperties": False,
    }


def _property_schema(param: Param) -> dict:
    schema = _value_schema(param)
    if param.is_list:
        schema = {"type": "array", "items": schema, "maxItems": param.max_items or MAX_LIST_ITEMS}
    schema["title"] = param.label
    if param.secret:
        schema.update({"format": "password", "writeOnly": True})
    elif param.default is not None:
        schema["default"] = to_json(param.default)
    return schema


def _value_schema(param: Param) -> dict:
    """One value (a list parameter's item): its type, bounds or choices."""
    if param.has_choices:
        return {"type": "string", "enum": list(param.current_choices())}
    return {**_SCHEMA[param.kind], **_schema_bounds(param)}


def _schema_bounds(param: Param) -> dict:
    bounds = {}
    if param.kind is str and param.max_length is not None:
        bounds["maxLength"] = param.max_length
    if param.kind in (int, float):
        if param.minimum is not None:
            bounds["minimum"] = param.minimum
        if param.maximum is not None:
            bounds["maximum"] = param.maximum
    elif param.minimum is not None or param.maximum is not None:
        low, high = to_json(param.minimum), to_json(param.maximum)
        hint = _SCHEMA[param.kind].get("description", "")
        bounds["description"] = f"{hint}; between {low} and {high}".lstrip("; ")
    return bounds


# Between typed values and JSON (Celery messages are JSON only) ------------------------


def to_json(value: Any) -> Any:
    if isinstance(value, list | tuple):  # a list parameter's items (one level only)
        return [_to_json(item) for item in value]
    return _to_json(value)


def _to_json(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return str(value)
    return value


def from_json(param: Param, value: Any) -> Any:
    """Rebuild the typed value a job's function expects from its JSON form."""
    if param.is_list and isinstance(value, list):
        return [_from_json(param.kind, item) for item in value]
    return _from_json(param.kind, value)


def _from_json(kind: Any, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return next(m for m in kind if m == value or str(m.value) == str(value))
    if kind is dt.datetime and isinstance(value, str):
        return dt.datetime.fromisoformat(value)
    if kind is dt.date and isinstance(value, str):
        return dt.date.fromisoformat(value)
    if kind is dt.timedelta and isinstance(value, int | float):
        return dt.timedelta(seconds=value)
    if kind is Decimal and not isinstance(value, Decimal):
        return Decimal(str(value))
    return value
