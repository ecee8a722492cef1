"""Secret parameters at every door but the worker (tests/jobs/test_secrets_end_to_end.py
has the worker): the form, the schema, the run record, re-runs, schedules, the sweeper."""

import json
import uuid
from io import StringIO
from typing import Annotated

import pytest
from celery.signals import before_task_publish
from django.core.management import CommandError, call_command
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from apps.jobs import params as P
from apps.jobs import secrets, sweeper
from apps.jobs.catalog import ParameterError, get_job
from apps.jobs.dispatch import rerun, start_run
from apps.jobs.models import Run, Source, State
from apps.scheduling.saving import ScheduleError, save_schedule
from tests.api.helpers import token_client
from tests.helpers import make_user
from tests.jobs.secret_job import NAME, SECRET

database = pytest.mark.django_db


def make_secret_run(**fields) -> Run:
    """A run as dispatch stores it: the token masked."""
    fields.setdefault("parameters", {"token": secrets.MASK, "label": "kept", "leak": "no"})
    fields.setdefault("state", State.FAILED)
    return Run.objects.create(task_id=str(uuid.uuid4()), job_name=NAME, source=Source.WEB,
                              queued_at="2026-01-01T00:00:00Z", **fields)  # fmt: skip


@pytest.fixture
def alice(client):
    user = make_user("alice", jobs=(NAME,))
    client.force_login(user)
    return user


# Declaring one ------------------------------------------------------------------------


@pytest.mark.once
def test_secret_of_a_type_and_annotated_with_the_marker_both_declare_a_secret():
    def fn(a: P.Secret[str], b: Annotated[str, P.Secret], c: Annotated[str, P.Secret()], d: str):
        pass

    assert [p.secret for p in P.params_from_signature(fn)] == [True, True, True, False]


@pytest.mark.once
def test_the_form_field_is_a_password_field_that_never_renders_its_value():
    form = get_job(NAME).form_class()(data={"token": SECRET, "label": ""})
    html = str(form["token"])
    assert 'type="password"' in html
    assert SECRET not in str(form)  # with its errors (label is required), still not shown


@pytest.mark.once
def test_the_json_schema_marks_a_secret_write_only_password():
    schema = get_job(NAME).json_schema()["properties"]["token"]
    assert schema["format"] == "password" and schema["writeOnly"] is True
    assert "format" not in get_job(NAME).json_schema()["properties"]["label"]


@pytest.fixture
def published():
    """(kwargs, kwargsrepr) of each message published during the test."""
    sent = []

    def keep(body, headers, **kwargs):
        sent.append((body[1], headers["kwargsrepr"]))

    before_task_publish.connect(keep)
    yield sent
    before_task_publish.disconnect(keep)


# The run record -----------------------------------------------------------------------


@database
def test_the_run_record_stores_a_mask_and_the_message_carries_the_value(
    alice, django_capture_on_commit_callbacks, published
):
    with django_capture_on_commit_callbacks(execute=True):
        run = start_run(get_job(NAME), {"token": SECRET}, source=Source.API, user=alice)
    run.refresh_from_db()
    assert run.parameters == {"token": secrets.MASK, "label": "plain", "leak": "no"}
    [(kwargs, kwargsrepr)] = published
    assert kwargs["token"] == SECRET
    assert SECRET not in kwargsrepr


@pytest.mark.once
def test_celery_argument_reprs_of_a_job_with_secrets_are_masked():
    headers = {"argsrepr": "x", "kwargsrepr": "y"}
    body = ([SECRET], {"label": "l"}, {})
    secrets.mask_reprs(NAME, body=body, headers=headers)
    assert SECRET not in headers["argsrepr"] + headers["kwargsrepr"]
    assert secrets.MASK in headers["argsrepr"] and "'label': 'l'" in headers["kwargsrepr"]


@pytest.mark.once
def test_scrub_replaces_the_value_as_text_as_json_and_as_a_repr():
    odd = 'p"ss\\wörd'
    text = f"{odd} {json.dumps(odd)} {odd!r}"
    assert odd not in secrets.scrub(text, [odd])
    assert "ss" not in secrets.scrub(text, [odd]).replace(secrets.MASK, "")


# Running it again ---------------------------------------------------------------------


@database
def test_a_rerun_without_the_secret_is_refused_naming_it():
    with pytest.raises(ParameterError) as refused:
        rerun(make_secret_run(), source=Source.CLI, label="ops")
    assert list(refused.value.errors) == ["token"]
    assert "give it again" in refused.value.one_line()
    assert Run.objects.count() == 1


@database
def test_a_rerun_given_the_secret_again_runs_with_it_and_stores_the_mask(
    django_capture_on_commit_callbacks, published
):
    old = make_secret_run()
    with django_capture_on_commit_callbacks(execute=True):
        new = rerun(old, source=Source.CLI, label="ops", secret_values={"token": "n3w-t0ken"})
    assert new.rerun_of == old and new.parameters["token"] == secrets.MASK
    [(kwargs, kwargsrepr)] = published
    assert kwargs == {"token": "n3w-t0ken", "label": "kept", "leak": "no"}
    assert "n3w-t0ken" not in kwargsrepr


@database
def test_a_rerun_refuses_a_non_secret_given_as_a_secret():
    with pytest.raises(ParameterError) as refused:
        rerun(make_secret_run(), source=Source.CLI, secret_values={"label": "x"})
    assert refused.value.errors == {"label": ["not a secret parameter of this job"]}


@database
def test_run_again_on_the_web_asks_for_the_secret_in_a_prefilled_form(client, alice):
    old = make_secret_run()
    response = client.post(f"/runs/{old.pk}/rerun/", follow=True)
    html = response.content.decode()
    assert response.redirect_chain[-1][0] == f"/jobs/{NAME}/?rerun={old.pk}"
    assert "enter it again" in html
    assert 'value="kept"' in html  # the other values prefilled
    assert 'name="token"' in html and secrets.MASK not in html
    assert Run.objects.count() == 1


@database
def test_api_retry_without_the_secret_is_422_and_with_it_201(alice):
    api = token_client(alice)
    old = make_secret_run()
    refused = api.post(f"/api/runs/{old.pk}/retry", content_type="application/json")
    assert refused.status_code == 422 and "token" in refused.json()["detail"]
    given = {"secrets": {"token": "n3w-t0ken"}}
    accepted = api.post(f"/api/runs/{old.pk}/retry", given, content_type="application/json")
    assert accepted.status_code == 201, accepted.content
    assert accepted.json()["parameters"]["token"] == secrets.MASK


@database
def test_cli_retry_without_the_secret_exits_2_and_with_it_starts_a_run():
    old = make_secret_run()
    with pytest.raises(CommandError) as refused:
        call_command("jobs", "retry", str(old.pk), stdout=StringIO())
    assert refused.value.returncode == 2 and "token" in str(refused.value)
    out = StringIO()
    call_command("jobs", "retry", str(old.pk), "token=n3w-t0ken", "--json", stdout=out)
    assert "n3w-t0ken" not in out.getvalue()
    assert Run.objects.filter(rerun_of=old).count() == 1


# Sending it later, scheduling it ------------------------------------------------------


@database
def test_the_sweeper_fails_an_unsent_run_whose_secret_is_not_stored(published):
    run = make_secret_run(state=State.PENDING_SEND)
    sweeper.send_pending(older_than=sweeper.timedelta(0))
    run.refresh_from_db()
    assert run.state == State.FAILED and "token" in run.note
    assert published == []


@database
def test_a_schedule_refuses_a_job_with_a_secret_naming_the_field():
    task = PeriodicTask(name="nightly", task=NAME, kwargs=json.dumps({"token": SECRET}))
    every = IntervalSchedule(every=1, period=IntervalSchedule.HOURS)
    with pytest.raises(ScheduleError) as refused:
        save_schedule(task, every, {})
    assert "cannot be kept in a schedule" in refused.value.errors["param-token"][0]
    assert not PeriodicTask.objects.filter(name="nightly").exists()


@database
def test_schedules_add_of_a_job_with_a_secret_exits_2():
    with pytest.raises(CommandError) as refused:
        call_command("schedules", "add", "nightly", "--job", NAME, "--every", "1h", "token=x",
                     stdout=StringIO())  # fmt: skip
    assert refused.value.returncode == 2
    assert not PeriodicTask.objects.filter(name="nightly").exists()


@database
@pytest.mark.parametrize("with_run", [True, False])
def test_the_results_admin_retry_refuses_a_secret_it_does_not_have(root_client, with_run):
    """With its run record, or only the results row (task_kwargs masked by kwargsrepr)."""
    from django_celery_results.models import TaskResult

    run = make_secret_run()
    task_id = run.task_id if with_run else str(uuid.uuid4())
    if not with_run:
        run.delete()
    masked = json.dumps(repr({"token": secrets.MASK}))
    stored = TaskResult.objects.create(task_id=task_id, task_name=NAME, status="FAILURE",
                                       task_args=json.dumps("[]"), task_kwargs=masked)  # fmt: skip
    response = root_client.post("/admin/django_celery_results/taskresult/",
                                {"action": "retry_failed", "_selected_action": [stored.pk]},
                                follow=True)  # fmt: skip
    assert "token: a secret is not stored" in response.content.decode()
    assert Run.objects.filter(source=Source.ADMIN).count() == 0


@database
@pytest.mark.parametrize(("body", "status"), [
    ("not json", 400), ("[1]", 422), ('{"secrets": "x"}', 422), ('{"secret": {}}', 422),
    ('{"secrets": {"label": "x"}}', 422), ('{"secrets": {"token": NaN}}', 400),
    ('{"secrets": {"token": "a\\u0000b"}}', 422), ('{"secrets": {"token": {"a": 1}}}', 422),
])  # fmt: skip
def test_api_retry_refuses_a_bad_body_with_a_4xx_and_starts_nothing(alice, body, status):
    old = make_secret_run()
    response = token_client(alice).post(f"/api/runs/{old.pk}/retry", body,
                                        content_type="application/json")  # fmt: skip
    assert response.status_code == status, response.content
    assert "detail" in response.json() and Run.objects.count() == 1


@database
@pytest.mark.parametrize("given", [["token"], ["label=x"], ["token=a", "token=b"],
                                   ["token=a\x00b"], ["=x"]])  # fmt: skip
def test_cli_retry_refuses_bad_secrets_with_exit_2_and_starts_nothing(given):
    old = make_secret_run()
    with pytest.raises(CommandError) as refused:
        call_command("jobs", "retry", str(old.pk), *given, stdout=StringIO())
    assert refused.value.returncode == 2 and "\n" not in str(refused.value)
    assert Run.objects.count() == 1


@pytest.mark.once
def test_jobs_list_says_a_parameter_is_secret():
    out = StringIO()
    call_command("jobs", "list", stdout=out)
    assert "token: str (secret) (required)" in out.getvalue()


@database
@pytest.mark.parametrize("rerun", ["99999999999999999999999", "²", "-1", "1e3", "", "x"])
def test_the_prefilled_form_ignores_a_run_id_that_is_not_one(client, alice, rerun):
    response = client.get(f"/jobs/{NAME}/", {"rerun": rerun})
    assert response.status_code == 200 and 'name="token"' in response.content.decode()
