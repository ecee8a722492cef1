"""Forms of the web views: a job's typed form, and the filters of the runs list."""

import functools
import uuid
from typing import Any

from django import forms

from . import params as P
from .catalog import Job
from .run_filters import RunFilterForm  # noqa: F401  (its home before; apps.reports)

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
