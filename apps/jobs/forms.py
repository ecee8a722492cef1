"""Forms of the web views: a job's typed form, and the filters of the runs list."""

import datetime as dt
import functools
import uuid
from typing import Any

from django import forms
from django.db.models import QuerySet
from django.utils import timezone

from . import params as P
from .catalog import Job
from .dates import validate_date
from .models import Source, State

IDEMPOTENCY_KEY = "idempotency_key"


@functools.cache
def job_form_class(job: Job) -> type[forms.Form]:
    """The job's typed form, plus a hidden key (set at render) so a repeated POST
    starts one run."""
    key = forms.UUIDField(required=False, widget=forms.HiddenInput)
    base = job.form_class()
    return type(base.__name__, (base,), {IDEMPOTENCY_KEY: key})


def job_parameters(job: Job, form: forms.Form) -> dict[str, Any]:
    """The form's typed values as JSON: an unchecked box is False, not the default."""
    return {p.name: P.to_json(form.cleaned_data[p.name]) for p in job.params}


def idempotency_key(form: forms.Form) -> str | None:
    key = form.cleaned_data.get(IDEMPOTENCY_KEY)
    return str(key) if key else None


def parse_key(raw: str | None) -> str | None:
    """A key posted by a plain form (Run again): a UUID, or none."""
    try:
        return str(uuid.UUID(raw)) if raw else None
    except ValueError:
        return None


def _any(choices) -> list[tuple[str, str]]:
    return [("", "any"), *choices]


class RunFilterForm(forms.Form):
    """Filters of /runs/; an invalid value is shown as an error and not applied."""

    job = forms.CharField(
        required=False, max_length=255, widget=forms.TextInput(attrs={"list": "job-names"})
    )
    state = forms.ChoiceField(required=False, choices=_any(State.choices))
    source = forms.ChoiceField(required=False, choices=_any(Source.choices))
    user = forms.CharField(required=False, max_length=150, label="User name")
    date_from = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}),
        validators=[validate_date],
    )  # fmt: skip
    date_to = forms.DateField(
        required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}),
        validators=[validate_date],
    )  # fmt: skip

    def apply(self, runs: QuerySet) -> QuerySet:
        self.is_valid()
        data = self.cleaned_data
        exact = {
            "job_name": data.get("job"),
            "state": data.get("state"),
            "source": data.get("source"),
            "requested_by__username": data.get("user"),
            "queued_at__gte": _day_start(data.get("date_from")),
            "queued_at__lt": _day_start(data.get("date_to"), days_later=1),
        }
        runs = runs.filter(**{key: value for key, value in exact.items() if value})
        if data.get("source") != Source.PIPELINE:
            # A pipeline's steps show on its own page; filtered by source, here too.
            runs = runs.filter(pipeline__isnull=True)
        return runs


def _day_start(day: dt.date | None, days_later: int = 0) -> dt.datetime | None:
    """Midnight in the site's time zone, so a date range stays an index range."""
    if day is None:
        return None
    midnight = dt.datetime.combine(day + dt.timedelta(days=days_later), dt.time.min)
    return timezone.make_aware(midnight)
