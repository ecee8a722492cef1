"""One description of a job's parameters, three faces: form, JSON schema, CLI strings."""

import datetime as dt
import enum
import re
from decimal import Decimal
from typing import Annotated, Literal

import pytest
from django import forms
from hypothesis import given
from hypothesis import strategies as st

from apps.jobs import params as P
from apps.jobs.catalog import Job, ParameterError, clean_parameters


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


def everything(
    count: int,
    ratio: float,
    price: Decimal,
    name: str,
    dry_run: bool,
    day: dt.date,
    at: dt.datetime,
    every: dt.timedelta,
    mode: Literal["fast", "slow"],
    colour: Colour,
    tags: list[str],
    limit: int = 10,
    note: str = "",
    verbose: bool = True,
) -> None:
    """A job with one parameter of every supported kind."""


JOB = Job(
    name="tests.everything",
    title="Everything",
    description="",
    params=P.params_from_signature(everything),
)
VALID = {
    "count": "3", "ratio": "0.5", "price": "9.99", "name": "x", "dry_run": "false",
    "day": "2026-03-29", "at": "2026-03-29T02:30:00+02:00", "every": "1:30:00",
    "mode": "fast", "colour": "red", "tags": "a,b",
}  # fmt: skip


def test_each_type_maps_to_its_form_field():
    form = JOB.form_class()()
    kinds = {name: type(field) for name, field in form.fields.items()}
    assert kinds["count"] is forms.IntegerField
    assert kinds["ratio"] is forms.FloatField
    assert kinds["price"] is forms.DecimalField
    assert kinds["name"] is forms.CharField
    assert kinds["dry_run"] is forms.BooleanField
    assert kinds["day"] is forms.DateField
    assert kinds["at"] is forms.DateTimeField
    assert kinds["every"] is P.StrictDurationField
    assert kinds["mode"] is forms.ChoiceField
    assert kinds["colour"] is forms.ChoiceField
    assert kinds["tags"] is P.ListField


def test_required_and_defaults_come_from_the_signature():
    by_name = {p.name: p for p in JOB.params}
    assert by_name["count"].required and by_name["count"].default is None
    assert not by_name["limit"].required and by_name["limit"].default == 10
    assert JOB.form_class()().fields["limit"].initial == 10


def test_the_json_schema_describes_every_parameter():
    schema = JOB.json_schema()
    props = schema["properties"]
    assert props["count"]["type"] == "integer"
    assert props["ratio"]["type"] == "number"
    assert props["dry_run"]["type"] == "boolean"
    assert props["day"]["format"] == "date"
    assert props["at"]["format"] == "date-time"
    assert props["mode"]["enum"] == ["fast", "slow"]
    assert props["colour"]["enum"] == ["red", "blue"]
    assert props["tags"]["type"] == "array"
    assert props["limit"]["default"] == 10
    assert set(schema["required"]) == {"count", "ratio", "price", "name", "dry_run", "day",
                                       "at", "every", "mode", "colour", "tags"}  # fmt: skip
    assert schema["additionalProperties"] is False


def test_cli_strings_are_cleaned_into_json_safe_values():
    cleaned = clean_parameters(JOB, VALID, text=True)
    assert cleaned["count"] == 3
    assert cleaned["price"] == "9.99"
    assert cleaned["dry_run"] is False
    assert cleaned["day"] == "2026-03-29"
    assert cleaned["every"] == 5400.0
    assert cleaned["tags"] == ["a", "b"]
    assert cleaned["limit"] == 10 and cleaned["verbose"] is True


def test_json_values_are_accepted_as_they_are():
    cleaned = clean_parameters(
        JOB, {**VALID, "count": 3, "dry_run": True, "tags": ["x"]}, text=True
    )
    assert (cleaned["count"], cleaned["dry_run"], cleaned["tags"]) == (3, True, ["x"])


def test_cleaned_values_round_trip_to_the_annotated_types():
    cleaned = clean_parameters(JOB, VALID, text=True)
    typed = {p.name: P.from_json(p, cleaned[p.name]) for p in JOB.params}
    assert typed["price"] == Decimal("9.99")
    assert typed["day"] == dt.date(2026, 3, 29)
    assert typed["at"].utcoffset() == dt.timedelta(hours=2)
    assert typed["every"] == dt.timedelta(hours=1, minutes=30)
    assert typed["colour"] is Colour.RED


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("count", "three", "whole number"),
        ("ratio", "fast", "number"),
        ("price", "1.2.3", "number"),
        ("dry_run", "maybe", "true or false"),
        ("day", "2026-02-30", "valid date"),
        ("every", "soon", "duration"),
        ("mode", "medium", "valid choice"),
        ("colour", "green", "valid choice"),
    ],
)
def test_a_bad_value_is_refused_naming_the_parameter(name, value, message):
    with pytest.raises(ParameterError) as refused:
        clean_parameters(JOB, {**VALID, name: value}, text=True)
    assert list(refused.value.errors) == [name]
    assert message in refused.value.one_line()
    assert refused.value.one_line().startswith(f"{name}: ")


def test_unknown_and_missing_parameters_are_refused_by_name():
    with pytest.raises(ParameterError) as unknown:
        clean_parameters(JOB, {**VALID, "colour_": "red"}, text=True)
    assert unknown.value.errors == {"colour_": ["unknown parameter"]}
    missing = dict(VALID)
    del missing["count"]
    with pytest.raises(ParameterError) as refused:
        clean_parameters(JOB, missing, text=True)
    assert "count" in refused.value.errors


def test_checking_parameters_copies_no_form_fields(monkeypatch):
    """Issue 15: a start's check of its parameters shares the job form's fields (a deep
    copy of them per check was a sixth of a start_run)."""
    copied = []
    deepcopy = forms.Field.__deepcopy__

    def counted(field, memo):
        copied.append(field)
        return deepcopy(field, memo)

    monkeypatch.setattr(forms.Field, "__deepcopy__", counted)
    clean_parameters(JOB, VALID, text=True)
    assert copied == []
    JOB.form_class()()  # a form that is rendered still gets fields of its own
    assert len(copied) == len(JOB.params)


def test_one_check_of_shared_fields_leaves_nothing_behind_for_the_next():
    with pytest.raises(ParameterError) as refused:
        clean_parameters(JOB, {**VALID, "count": "many", "mode": "medium"}, text=True)
    assert set(refused.value.errors) == {"count", "mode"}
    assert clean_parameters(JOB, VALID, text=True)["count"] == 3
    with pytest.raises(ParameterError) as again:
        clean_parameters(JOB, {**VALID, "day": "someday"}, text=True)
    assert set(again.value.errors) == {"day"}


def test_oversized_inputs_are_refused():
    with pytest.raises(ParameterError) as long_text:
        clean_parameters(JOB, {**VALID, "name": "x" * (10 * 1024 * 1024)}, text=True)
    assert "name" in long_text.value.errors
    with pytest.raises(ParameterError) as long_list:
        clean_parameters(JOB, {**VALID, "tags": [str(i) for i in range(100_000)]}, text=True)
    assert "tags" in long_list.value.errors


def test_an_unsupported_annotation_is_an_error_when_the_job_is_declared():
    def bad(x: dict) -> None: ...

    with pytest.raises(TypeError, match="unsupported type"):
        P.params_from_signature(bad)


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_any_integer_round_trips_through_its_cli_string(number):
    assert clean_parameters(JOB, {**VALID, "count": str(number)}, text=True)["count"] == number


@given(st.text(max_size=50))
def test_any_text_for_an_integer_either_parses_or_names_the_parameter(text):
    try:
        cleaned = clean_parameters(JOB, {**VALID, "count": text}, text=True)
    except ParameterError as refused:
        assert set(refused.errors) == {"count"}
    else:
        # Django's IntegerField also takes a trailing ".0" ("7." and "7.00" are 7).
        assert cleaned["count"] == int(re.sub(r"\.0*$", "", text.strip()))


@given(st.dates(min_value=dt.date(1900, 1, 1)))
def test_any_date_round_trips(day):
    cleaned = clean_parameters(JOB, {**VALID, "day": day.isoformat()}, text=True)
    assert P.from_json(next(p for p in JOB.params if p.name == "day"), cleaned["day"]) == day


@given(
    st.lists(
        st.text(alphabet=st.characters(categories=["L", "N"]), min_size=1), min_size=1, max_size=20
    )
)
def test_a_json_list_of_strings_round_trips(tags):
    assert clean_parameters(JOB, {**VALID, "tags": tags}, text=True)["tags"] == tags


# Bounds and choices declared with Annotated -------------------------------------------

OPTIONS = ["a", "b"]


def must_be_even(value: int) -> None:
    if value % 2:
        raise ValueError("must be even")


def bounded(
    days: Annotated[int, P.Range(1, 30)],
    ratio: Annotated[float, P.Range(0, 1)] = 0.5,
    day: Annotated[dt.date, P.Range(dt.date(2000, 1, 1), dt.date(2099, 12, 31))] | None = None,
    name: Annotated[str, P.MaxLength(5)] = "",
    note: Annotated[str, P.Multiline()] = "",
    pick: Annotated[str, P.Choices(lambda: OPTIONS)] = "a",
    tags: Annotated[list[str], P.MaxItems(2), P.MaxLength(3)] | None = None,
    even: Annotated[int, P.Validator(must_be_even)] = 0,
) -> None:
    """A job with one declaration of each kind."""


BOUNDED = Job(name="tests.bounded", title="Bounded", description="",
              params=P.params_from_signature(bounded))  # fmt: skip


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("days", "0", "greater than or equal to 1"),
        ("days", "31", "less than or equal to 30"),
        ("ratio", "1.5", "less than or equal to 1"),
        ("ratio", "nan", "Enter a number"),
        ("day", "2100-01-01", "less than or equal to 2099-12-31"),
        ("name", "toolong", "at most 5 characters"),
        ("name", "a\nb", "control characters"),
        ("note", "tab\there\x07", "control characters"),
        ("pick", "c", "valid choice"),
        ("tags", ["a", "b", "c"], "at most 2 items"),
        ("tags", ["abcd"], "at most 3 characters"),
        ("tags", ["a\x1b"], "control characters"),
        ("even", "3", "must be even"),
    ],
)
def test_a_value_outside_its_declaration_is_refused_naming_the_parameter(name, value, message):
    with pytest.raises(ParameterError) as refused:
        clean_parameters(BOUNDED, {"days": "5", name: value})
    assert list(refused.value.errors) == [name]
    assert message in refused.value.one_line()


def test_values_within_their_declarations_are_accepted():
    values = {"days": "30", "ratio": "0", "day": "2000-01-01", "name": "abcde", "pick": "b",
              "note": "line\r\nline\tend", "tags": ["abc", "d"], "even": "4"}  # fmt: skip
    cleaned = clean_parameters(BOUNDED, values)
    assert cleaned["days"] == 30 and cleaned["note"] == "line\r\nline\tend"


def test_the_declarations_reach_the_form_and_the_json_schema():
    fields = BOUNDED.form_class()().fields
    assert fields["days"].widget.attrs == {"min": 1, "max": 30}
    props = BOUNDED.json_schema()["properties"]
    assert (props["days"]["minimum"], props["days"]["maximum"]) == (1, 30)
    assert props["name"]["maxLength"] == 5
    assert props["tags"]["maxItems"] == 2 and props["tags"]["items"]["maxLength"] == 3
    assert props["pick"]["enum"] == ["a", "b"]
    assert "between 2000-01-01 and 2099-12-31" in props["day"]["description"]


def test_choices_from_a_function_are_read_each_time(monkeypatch):
    monkeypatch.setattr(f"{__name__}.OPTIONS", ["a", "b", "c"])
    assert clean_parameters(BOUNDED, {"days": "1", "pick": "c"})["pick"] == "c"
    assert BOUNDED.json_schema()["properties"]["pick"]["enum"] == ["a", "b", "c"]


def test_a_default_outside_its_own_bounds_is_an_error_when_the_job_is_declared():
    def bad(days: Annotated[int, P.Range(1, 30)] = 0) -> None: ...

    with pytest.raises(TypeError, match="parameter 'days': default 0 is less than the minimum 1"):
        P.params_from_signature(bad)


@pytest.mark.parametrize("default", [float("nan"), float("inf"), float("-inf")])
def test_a_float_default_that_is_not_a_finite_number_is_an_error_when_the_job_is_declared(
    default,
):
    def bounded(ratio: Annotated[float, P.Range(0, 1)] = default) -> None: ...

    def plain(ratio: float = default) -> None: ...

    for job in (bounded, plain):
        message = f"parameter 'ratio': default {default!r} is not a finite number"
        with pytest.raises(TypeError, match=re.escape(message)):
            P.params_from_signature(job)


@pytest.mark.parametrize("default", [Decimal("NaN"), Decimal("sNaN"), Decimal("Infinity")])
def test_a_decimal_default_that_is_not_a_finite_number_is_an_error_too(default):
    def priced(price: Annotated[Decimal, P.Range(0, 10)] = default) -> None: ...

    message = f"parameter 'price': default {default!r} is not a finite number"
    with pytest.raises(TypeError, match=re.escape(message)):
        P.params_from_signature(priced)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("ratio", float("nan"), "nan is not a finite number"),
        ("days", -1, "-1 is less than the minimum 1"),
        ("ratio", 2.0, "2.0 is more than the maximum 1"),
        ("name", "x" * 6, "6 characters, more than 5"),
        ("name", "a\x00", "control character"),
        ("tags", ["a", "b", "c"], "3 items, more than the maximum 2"),
    ],
)
def test_the_workers_check_of_a_typed_value_names_the_bound(name, value, message):
    param = next(p for p in BOUNDED.params if p.name == name)
    with pytest.raises(ValueError, match=re.escape(message)):
        P.check_value(param, value)


# Lists keep the type and the bounds of their items ----------------------------------------


def lists(
    counts: list[Annotated[int, P.Range(0, 9)]],
    ratios: list[float] | None = None,
    flags: list[bool] | None = None,
    days: list[dt.date] | None = None,
    prices: list[Decimal] | None = None,
    modes: list[Literal["fast", "slow"]] | None = None,
    words: Annotated[list[str], P.MaxLength(3)] | None = None,
) -> None:
    """A job with a list of each kind of item."""


LISTS = Job(name="tests.lists", title="Lists", description="",
            params=P.params_from_signature(lists))  # fmt: skip


def test_each_item_is_cleaned_into_its_own_type():
    cleaned = clean_parameters(LISTS, {
        "counts": "1, 2", "ratios": [0.5, "1.5"], "flags": "true\nno", "days": ["2026-03-29"],
        "prices": "9.99", "modes": ["slow"], "words": ["abc"],
    }, text=True)  # fmt: skip
    assert cleaned == {"counts": [1, 2], "ratios": [0.5, 1.5], "flags": [True, False],
                       "days": ["2026-03-29"], "prices": ["9.99"], "modes": ["slow"],
                       "words": ["abc"]}  # fmt: skip
    typed = {p.name: P.from_json(p, cleaned[p.name]) for p in LISTS.params}
    assert typed["days"] == [dt.date(2026, 3, 29)] and typed["prices"] == [Decimal("9.99")]


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("counts", [1, 10], "item 2: Ensure this value is less than or equal to 9."),
        ("ratios", [1e309], "item 1: Enter a number."),
        ("flags", ["maybe"], "item 1: expected true or false, got 'maybe'"),
        ("days", "2026-02-30", "item 1: Enter a valid date."),
        ("modes", ["fast", "medium"], "item 2: Select a valid choice."),
        ("words", ["abcd"], "item 1: Ensure this value has at most 3 characters"),
    ],
)
def test_a_bad_item_is_refused_naming_the_parameter_and_the_item(name, value, message):
    with pytest.raises(ParameterError) as refused:
        clean_parameters(LISTS, {"counts": [1], name: value}, text=True)
    assert list(refused.value.errors) == [name]
    assert message in refused.value.one_line()


def test_the_json_schema_gives_the_type_and_bounds_of_the_items():
    props = LISTS.json_schema()["properties"]
    assert props["counts"]["items"] == {"type": "integer", "minimum": 0, "maximum": 9}
    assert props["flags"]["items"] == {"type": "boolean"}
    assert props["days"]["items"]["format"] == "date"
    assert props["modes"]["items"]["enum"] == ["fast", "slow"]


def test_the_workers_check_of_a_list_names_the_item():
    counts = next(p for p in LISTS.params if p.name == "counts")
    with pytest.raises(ValueError, match=re.escape("item 2: 10 is more than the maximum 9")):
        P.check_value(counts, [1, 10])
