"""A secret given to a Tasks API task as a positional argument, as `enqueue("acme",
token)` does, is stored masked like a keyword one: the run page, the API and `jobs
status` show the mask; the worker gets the clear value from the message; running it
again asks for the secret again."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils.http import urlencode

from apps.jobs.models import Run, State
from apps.jobs.secrets import MASK
from tests.api.helpers import token_client
from tests.djtasks.secret_task import TOKEN, sync_crm
from tests.helpers import make_superuser, wait_for
from tests.jobs.secret_job import fingerprint

NAME = sync_crm.module_path


def finished(run: Run) -> Run | None:
    run.refresh_from_db()
    return run if run.is_finished else None


@pytest.mark.django_db
def test_a_positional_secret_is_stored_and_shown_masked(client):
    root = make_superuser()
    run = Run.objects.get(task_id=sync_crm.enqueue("acme", TOKEN).id)
    assert (run.args, run.parameters) == (["acme", MASK], {})
    client.force_login(root)
    assert TOKEN not in client.get(run.get_absolute_url()).content.decode()
    api = token_client(root).get(f"/api/runs/{run.pk}").json()
    assert api["args"] == ["acme", MASK] and TOKEN not in str(api)
    status = StringIO()
    call_command("jobs", "status", str(run.pk), stdout=status)
    assert TOKEN not in status.getvalue()


@pytest.mark.django_db
def test_running_it_again_asks_for_the_secret_again(client):
    root = make_superuser()
    run = Run.objects.get(task_id=sync_crm.enqueue("acme", TOKEN).id)
    client.force_login(root)
    again = client.post(reverse("jobs:rerun", args=[run.pk]))
    form_url = f"{reverse('jobs:job', args=[NAME])}?{urlencode({'rerun': run.pk})}"
    assert again["Location"] == form_url
    form = client.get(form_url).context["form"]
    assert form.initial.get("account") == "acme" and "token" not in form.initial
    refused = token_client(root).post(f"/api/runs/{run.pk}/retry")
    assert refused.status_code == 422 and "token" in refused.json()["errors"]
    assert Run.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_task_gets_the_clear_value_and_again_the_one_given_for_a_re_run(celery_worker):
    run = Run.objects.get(task_id=sync_crm.enqueue("acme", TOKEN).id)
    assert wait_for(lambda: finished(run), timeout=20).state == State.SUCCEEDED
    assert (
        sync_crm.get_result(run.task_id).return_value == f"acme: fingerprint {fingerprint(TOKEN)}"
    )
    retry = token_client(make_superuser()).post(
        f"/api/runs/{run.pk}/retry", {"secrets": {"token": "tok-NEW"}},
        content_type="application/json",
    )  # fmt: skip
    assert retry.status_code == 201
    second = Run.objects.get(pk=retry.json()["id"])
    assert second.args == ["acme", MASK]
    assert wait_for(lambda: finished(second), timeout=20).state == State.SUCCEEDED
    assert sync_crm.get_result(second.task_id).return_value == (
        f"acme: fingerprint {fingerprint('tok-NEW')}"
    )
