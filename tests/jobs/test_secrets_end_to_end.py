"""A secret, end to end with the real worker and Redis: the job body receives it, and it
appears nowhere else: pages, /runs/, the API, the CLI, a CSV export, the results table,
the run table, alert mail, the worker's log lines."""

import logging
import uuid
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from django_celery_results.models import TaskResult

from apps.jobs import secrets
from apps.jobs.models import Run, State
from apps.ops.alerts import check_alerts
from apps.ops.heartbeat import record as heartbeat
from apps.reports import export
from tests.api.helpers import token_client
from tests.helpers import make_run, make_superuser, make_user, wait_for
from tests.jobs.secret_job import NAME, SECRET, fingerprint

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres_pass]


def finished(run: Run) -> Run | None:
    run.refresh_from_db()
    return run if run.is_finished else None


def all_columns(table: str) -> str:
    """Every column of every row of a table, as one text."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
        return repr(cursor.fetchall())


def cli(*args: str) -> str:
    out = StringIO()
    call_command("jobs", *args, stdout=out, stderr=out)
    return out.getvalue()


@pytest.fixture
def mail(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.ADMINS = [("Ops", "ops@example.com")]
    from django.core import mail as outbox

    outbox.outbox = []
    return outbox


def test_a_secret_reaches_the_job_and_appears_nowhere_else(
    client, celery_worker, caplog, mail, settings, tmp_path
):
    caplog.set_level(logging.INFO)
    alice = make_user("alice", jobs=(NAME,))
    client.force_login(alice)
    form = {"token": SECRET, "label": "web", "leak": "return", "idempotency_key": uuid.uuid4()}
    web = Run.objects.get(pk=client.post(f"/jobs/{NAME}/", form)["Location"].split("/")[-2])
    api = token_client(alice)
    body = {"parameters": {"token": SECRET, "label": "api", "leak": "raise"}}
    posted = api.post(f"/api/jobs/{NAME}/runs", body, content_type="application/json")
    failing = Run.objects.get(pk=posted.json()["id"])
    started = cli("run", NAME, f"token={SECRET}", "label=cli", "--wait", "--timeout", "60")
    plain = Run.objects.filter(parameters__label="cli").get()
    for run in (web, failing, plain):
        wait_for(lambda run=run: finished(run), timeout=60)

    # The job body had the clear value (its fingerprint), and the outcomes are as asked.
    assert (web.state, failing.state, plain.state) == (State.SUCCEEDED, State.FAILED,
                                                        State.SUCCEEDED)  # fmt: skip
    assert TaskResult.objects.get(task_id=plain.task_id).result == (
        f'"fingerprint {fingerprint(SECRET)}"'
    )

    heartbeat("beat")
    check_alerts(timezone.now() + timedelta(minutes=5))
    settings.MEDIA_ROOT = tmp_path
    exported = export.export_runs(make_run(export.EXPORT_JOB, requested_by=make_superuser()), {})

    runs = (web, failing, plain)
    seen = {
        "run pages": "".join(client.get(f"/runs/{r.pk}/").content.decode() for r in runs),
        "runs list": client.get("/runs/").content.decode(),
        "api": "".join(api.get(f"/api/runs/{r.pk}").content.decode() for r in runs)
        + api.get("/api/runs").content.decode(),
        "cli": started + "".join(cli("status", str(r.pk), "--json") for r in (web, failing)),
        "csv": (tmp_path / exported["file"]).read_text(),
        "results table": all_columns(TaskResult._meta.db_table),
        "runs table": all_columns(Run._meta.db_table),
        "mail": "".join(m.subject + m.body for m in mail.outbox),
        "worker log": caplog.text,
    }
    assert {place: SECRET in text for place, text in seen.items()} == dict.fromkeys(seen, False)
    # What was there instead: the mask, in the places that show it.
    assert secrets.MASK in seen["run pages"] and secrets.MASK in seen["api"]
    assert secrets.MASK in TaskResult.objects.get(task_id=web.task_id).task_kwargs
    assert "use_secret got token" in seen["worker log"]  # the job's log line, scrubbed
    assert "the service refused token" in seen["run pages"]  # the traceback, scrubbed
    assert mail.outbox  # the failure was mailed
