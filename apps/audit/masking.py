"""A schedule's kwargs in the audit log: the values of secret parameters masked.

Schedules refuse secret parameters (apps/scheduling/saving.py), but a row written by
hand or by an older version may hold one; its diff must not. django-auditlog calls this
with the field's text, without the row, so every parameter name that is secret in any
catalog job is masked.
"""

import json

from apps.jobs.catalog import all_jobs
from apps.jobs.secrets import MASK


def secret_names() -> set[str]:
    return {p.name for job in all_jobs() for p in job.params if p.secret}


def masked_kwargs(text: str) -> str:
    try:
        kwargs = json.loads(text)
    except (TypeError, ValueError):
        return text
    if not isinstance(kwargs, dict):
        return text
    names = secret_names()
    return json.dumps({k: MASK if k in names else v for k, v in kwargs.items()})
