"""`make_*` helpers for the API tests."""

import uuid

from django.test import Client
from django.utils import timezone

from apps.api.models import ApiToken
from apps.jobs.models import Run, Source, State

ADD = "apps.demo.tasks.add"
COUNTDOWN = "apps.demo.tasks.countdown"
FLAKY = "apps.demo.tasks.flaky"


def make_token(user, name: str = "script") -> str:
    return ApiToken.issue(user, name)[1]


def token_client(user) -> Client:
    return Client(headers={"Authorization": f"Bearer {make_token(user)}"})


def make_run(**fields) -> Run:
    fields.setdefault("task_id", str(uuid.uuid4()))
    fields.setdefault("job_name", ADD)
    fields.setdefault("parameters", {"x": 1, "y": 2})
    fields.setdefault("source", Source.WEB)
    fields.setdefault("state", State.SUCCEEDED)
    fields.setdefault("queued_at", timezone.now())
    return Run.objects.create(**fields)
