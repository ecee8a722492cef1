"""A job's parameters, read once from its signature, and their three faces.

One `Param` per argument gives a Django form field (web and admin), a JSON schema
(API) and, through the same form, the parser for the CLI's `key=value` strings.
"""

import datetime as dt
import enum
import inspect
import types
import typing
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.dateparse import parse_duration

MAX_LIST_ITEMS = 1000
MAX_TEXT_LENGTH = 10_000


@dataclass(frozen=True)
class Param:
    name: str
    kind: type
    required: bool
    default: Any = None
    choices: tuple[str, ...] = ()
    is_list: bool = False

    @property
    def label(self) -> str:
        return self.name.replace("_", " ").capitalize()


def params_from_signature(fn) -> tuple[Param, ...]:
    hints = typing.get_type_hints(fn)
    params = []
    for name, p in inspect.signature(fn).parameters.items():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or name == "self":
            continue
        annotation = hints.get(name, str)
        required = p.default is inspect.Parameter.empty
        default = None if required else p.default
        params.append(_param(name, annotation, required, default))
    return tuple(params)


def _param(name: str, annotation: Any, required: bool, default: Any) -> Param:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType) and _is_optional(annotation):
        # `x: date | None = None`: an optional parameter of the inner type.
        (inner,) = (a for a in typing.get_args(annotation) if a is not type(None))
        return _param(name, inner, required, default)
    if origin is typing.Literal:
        choices = tuple(str(c) for c in typing.get_args(annotation))
        return Param(name, str, required, default, choices=choices)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        choices = tuple(str(member.value) for member in annotation)
        default = default.value if isinstance(default, enum.Enum) else default
        return Param(name, annotation, required, default, choices=choices)
    if origin is list:
        return Param(name, str, required, default, is_list=True)
    if annotation not in FIELD_BUILDERS:
        raise TypeError(f"parameter {name!r}: unsupported type {annotation!r}")
    return Param(name, annotation, required, default)


def _is_optional(annotation: Any) -> bool:
    args = typing.get_args(annotation)
    return type(None) in args and len(args) == 2


# Django form fields -------------------------------------------------------------------


class ListField(forms.CharField):
    """A list of strings: one per line in a form, a JSON array from the API."""

    widget = forms.Textarea(attrs={"rows": 3})

    def to_python(self, value):
        if value in self.empty_values:
            return []
        if isinstance(value, list | tuple):
            items = [str(item) for item in value]
        else:
            items = [line.strip() for line in str(value).replace(",", "\n").splitlines()]
        items = [item for item in items if item]
        if len(items) > MAX_LIST_ITEMS:
            raise ValidationError(f"at most {MAX_LIST_ITEMS} items, got {len(items)}")
        return items

    def validate(self, value):
        if self.required and not value:
            raise ValidationError(self.error_messages["required"], code="required")

    def run_validators(self, value):
        for item in value:
            super().run_validators(item)


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
    str: lambda **kw: forms.CharField(max_length=MAX_TEXT_LENGTH, **kw),
    bool: lambda **kw: forms.BooleanField(**{**kw, "required": False}),
    dt.date: lambda **kw: forms.DateField(widget=forms.DateInput(attrs={"type": "date"}), **kw),
    dt.datetime: lambda **kw: forms.DateTimeField(
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}), **kw
    ),
    dt.timedelta: lambda **kw: StrictDurationField(**kw),
}


def form_field(param: Param) -> forms.Field:
    options = {"required": param.required, "label": param.label}
    if param.default is not None:
        options["initial"] = param.default
    if param.choices:
        return forms.ChoiceField(choices=[(c, c) for c in param.choices], **options)
    if param.is_list:
        return ListField(max_length=MAX_TEXT_LENGTH, **options)
    return FIELD_BUILDERS[param.kind](**options)


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
    if param.choices:
        schema = {"type": "string", "enum": list(param.choices)}
    elif param.is_list:
        schema = {"type": "array", "items": {"type": "string"}, "maxItems": MAX_LIST_ITEMS}
    else:
        schema = dict(_SCHEMA[param.kind])
    schema["title"] = param.label
    if param.default is not None:
        schema["default"] = to_json(param.default)
    return schema


# Between typed values and JSON (Celery messages are JSON only) ------------------------


def to_json(value: Any) -> Any:
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
    if value is None:
        return None
    kind = param.kind
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
