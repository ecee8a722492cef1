"""Schedules obey per-job permissions: saving, enabling, duplicating, running or deleting a
schedule needs the same right as starting its job by hand (apps.jobs.permissions.may_run).

Personas: `planner` is staff with every periodic-task permission and no job permission;
`adder` is the same plus the permission to run `add`; `root` is a superuser.
"""

import json

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.urls import reverse
from django_celery_beat.models import PeriodicTask

from apps.jobs.models import Run
from apps.scheduling.forms import form_data
from tests.helpers import make_superuser, make_user
from tests.scheduling.makers import make_schedule

pytestmark = pytest.mark.django_db

ADD_URL = reverse("admin:django_celery_beat_periodictask_add")
LIST_URL = reverse("admin:django_celery_beat_periodictask_changelist")
ADD = "apps.demo.tasks.add"
RUN_COMMAND = "apps.maintenance.tasks.run_command"
MUL = "apps.demo.tasks.mul"  # a plain Celery task: superusers only, as on the web and API


def make_planner(username: str = "planner", jobs: tuple[str, ...] = ()):
    user = make_user(username, jobs=jobs)
    user.user_permissions.add(*Permission.objects.filter(codename__endswith="periodictask"))
    return user


@pytest.fixture
def planner(client):
    client.force_login(make_planner())
    return client


@pytest.fixture
def adder(client):
    client.force_login(make_planner("adder", jobs=(ADD,)))
    return client


@pytest.fixture
def root(client):
    client.force_login(make_superuser())
    return client


def change_url(task: PeriodicTask) -> str:
    return reverse("admin:django_celery_beat_periodictask_change", args=[task.pk])


def add_data(**values) -> dict:
    values.setdefault("name", "nightly add")
    values.setdefault("regtask", ADD)
    values.setdefault("param-x", "2")
    values.setdefault("param-y", "3")
    return form_data(**values)


def snapshot() -> list[tuple]:
    fields = ("pk", "name", "task", "enabled", "kwargs", "args", "crontab_id", "date_changed")
    return list(PeriodicTask.objects.order_by("pk").values_list(*fields))


def post_refused(client, url: str, data: dict) -> dict:
    """Post the form; expect it refused with nothing written; return its errors."""
    before = snapshot()
    response = client.post(url, data)
    assert response.status_code == 200, "the form was accepted"
    assert snapshot() == before
    return response.context["adminform"].form.errors


def act(client, action: str, *tasks: PeriodicTask, **more):
    data = {"action": action, "_selected_action": [t.pk for t in tasks], **more}
    return client.post(LIST_URL, data, follow=True)


def said(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def offered(client, url: str = ADD_URL) -> set[str]:
    field = client.get(url).context["adminform"].form.fields["regtask"]
    return {value for _, group in field.choices[1:] for value, _ in group}


# The form -----------------------------------------------------------------------------


def test_the_add_form_offers_only_the_jobs_the_user_may_run(adder):
    assert offered(adder) == {ADD}


def test_the_add_form_offers_a_superuser_every_job_and_plain_task(root):
    assert {ADD, RUN_COMMAND, MUL} <= offered(root)


def test_a_user_without_the_jobs_permission_cannot_add_a_schedule_of_it(adder):
    data = add_data(regtask=RUN_COMMAND, **{"param-command": "check"})
    errors = post_refused(adder, ADD_URL, data)
    assert "may not run" in errors["task"][0]


def test_typing_the_job_in_the_custom_task_field_is_refused_too(planner):
    errors = post_refused(planner, ADD_URL, add_data(regtask="", task=ADD))
    assert "may not run" in errors["task"][0]


def test_a_plain_celery_task_may_be_scheduled_by_superusers_only(adder):
    data = add_data(name="mul", regtask=MUL, kwargs=json.dumps({"x": 2, "y": 3}))
    errors = post_refused(adder, ADD_URL, data)
    assert "may not run" in errors["task"][0]


def test_a_user_cannot_change_the_parameters_of_a_schedule_of_a_job_they_may_not_run(planner):
    task = make_schedule()
    errors = post_refused(planner, change_url(task), add_data(**{"param-x": "7"}))
    assert "may not run" in errors["task"][0]


def test_a_user_cannot_enable_a_schedule_from_its_change_page_without_the_jobs_permission(
    planner,
):
    task = make_schedule(enabled=False)
    post_refused(planner, change_url(task), add_data(enabled="on"))
    task.refresh_from_db()
    assert task.enabled is False


def test_a_user_cannot_move_a_schedule_they_may_run_to_a_job_they_may_not(adder):
    task = make_schedule()
    data = add_data(regtask=RUN_COMMAND, **{"param-command": "check"})
    errors = post_refused(adder, change_url(task), data)
    assert "may not run" in errors["task"][0]


@pytest.mark.parametrize("headers", [
    {"task": MUL}, {"id": "the-task-id-of-another-run"}, {"shadow": RUN_COMMAND},
    {"eta": "garbage"}, {"periodic_task_name": "another schedule"}, {"switchyard_due": "x"},
])  # fmt: skip
def test_message_headers_cannot_name_another_task_or_override_celerys_own(adder, headers):
    """A header `task` would make the worker run MUL (superusers only) for a schedule of
    ADD: Celery lets the schedule's headers override its message's own."""
    errors = post_refused(adder, ADD_URL, add_data(headers=json.dumps(headers)))
    assert "reserved" in str(errors["headers"])


def test_a_schedule_may_carry_headers_of_its_own(adder):
    assert adder.post(ADD_URL, add_data(headers='{"x-team": "ops"}')).status_code == 302
    assert PeriodicTask.objects.get(name="nightly add").headers == '{"x-team": "ops"}'


def test_the_change_page_of_a_forbidden_jobs_schedule_still_shows_its_job(planner):
    task = make_schedule()
    assert offered(planner, change_url(task)) == {ADD}


def test_a_user_adds_and_edits_schedules_of_the_jobs_they_may_run(adder):
    assert adder.post(ADD_URL, add_data()).status_code == 302
    task = PeriodicTask.objects.get(name="nightly add")
    assert json.loads(task.kwargs) == {"x": 2, "y": 3}
    assert adder.post(change_url(task), add_data(**{"param-x": "7"})).status_code == 302
    task.refresh_from_db()
    assert json.loads(task.kwargs) == {"x": 7, "y": 3}


# The change list's actions -------------------------------------------------------------


@pytest.mark.parametrize("action", ["enable", "toggle_tasks"])
def test_enabling_a_forbidden_jobs_schedule_is_refused_with_a_message(planner, action):
    task = make_schedule(enabled=False)
    before = snapshot()
    response = act(planner, action, task)
    assert snapshot() == before
    assert "nightly add: you may not run Add two numbers." in said(response)


def test_disabling_a_forbidden_jobs_schedule_is_refused_with_a_message(planner):
    task = make_schedule()
    before = snapshot()
    response = act(planner, "disable", task)
    assert snapshot() == before
    assert "nightly add: you may not run Add two numbers." in said(response)


def test_duplicating_a_forbidden_jobs_schedule_is_refused_with_a_message(planner):
    task = make_schedule()
    response = act(planner, "duplicate", task)
    assert not PeriodicTask.objects.filter(name__startswith="nightly add (copy)").exists()
    assert "nightly add: you may not run Add two numbers." in said(response)


def test_running_a_plain_celery_tasks_schedule_now_is_for_superusers_only(adder):
    task = make_schedule("mul", task=MUL)
    response = act(adder, "run_now", task)
    assert Run.objects.count() == 0
    assert said(response) == [f"mul: you may not run {MUL}."]


def test_the_run_now_button_refuses_a_plain_celery_task_to_a_non_superuser(adder):
    task = make_schedule("mul", task=MUL)
    url = reverse("admin:django_celery_beat_periodictask_run_now", args=[task.pk])
    response = adder.post(url, follow=True)
    assert Run.objects.count() == 0
    assert said(response) == [f"mul: you may not run {MUL}."]


def test_actions_apply_to_the_allowed_schedules_and_refuse_the_others(adder):
    mine = make_schedule("mine", enabled=False)
    theirs = make_schedule("theirs", task=RUN_COMMAND, kwargs='{"command": "check"}',
                           enabled=False)  # fmt: skip
    response = act(adder, "enable", mine, theirs)
    enabled = PeriodicTask.objects.filter(name__in=["mine", "theirs"]).values_list
    assert dict(enabled("name", "enabled")) == {"mine": True, "theirs": False}
    assert said(response) == [
        "theirs: you may not run Run a management command.", "1 schedule enabled.",
    ]  # fmt: skip


def test_a_user_duplicates_and_runs_schedules_of_the_jobs_they_may_run(adder):
    task = make_schedule()
    act(adder, "duplicate", task)
    assert PeriodicTask.objects.filter(name="nightly add (copy)", enabled=False).exists()
    response = act(adder, "run_now", task)
    assert said(response) == ["1 run started."]
    assert Run.objects.get().job_name == ADD


# Deleting -------------------------------------------------------------------------------


def delete_url(task: PeriodicTask) -> str:
    return reverse("admin:django_celery_beat_periodictask_delete", args=[task.pk])


def test_deleting_a_forbidden_jobs_schedule_from_the_change_list_is_refused_with_a_message(
    planner,
):
    task = make_schedule()
    before = snapshot()
    response = act(planner, "delete_selected", task, post="yes")
    assert snapshot() == before
    assert said(response) == ["nightly add: you may not run Add two numbers."]


def test_the_delete_confirmation_lists_only_the_schedules_the_user_may_run(adder):
    mine = make_schedule("mine")
    theirs = make_schedule("theirs", task=RUN_COMMAND, kwargs='{"command": "check"}')
    response = act(adder, "delete_selected", mine, theirs)
    assert list(response.context["queryset"]) == [mine]
    assert said(response) == ["theirs: you may not run Run a management command."]


def test_deleting_from_the_change_list_deletes_the_allowed_schedules_only(adder):
    mine = make_schedule("mine")
    theirs = make_schedule("theirs", task=RUN_COMMAND, kwargs='{"command": "check"}')
    response = act(adder, "delete_selected", mine, theirs, post="yes")
    assert not PeriodicTask.objects.filter(pk=mine.pk).exists()
    assert PeriodicTask.objects.filter(pk=theirs.pk).exists()
    assert said(response) == [
        "theirs: you may not run Run a management command.",
        "Successfully deleted 1 periodic task.",
    ]  # fmt: skip


def test_the_delete_page_of_a_forbidden_jobs_schedule_is_refused(planner):
    task = make_schedule()
    assert planner.get(delete_url(task)).status_code == 403
    assert planner.post(delete_url(task), {"post": "yes"}).status_code == 403
    assert PeriodicTask.objects.filter(pk=task.pk).exists()


def test_the_change_page_of_a_forbidden_jobs_schedule_offers_no_delete_link(planner):
    task = make_schedule()
    assert delete_url(task) not in planner.get(change_url(task)).content.decode()


def test_a_user_deletes_a_schedule_of_a_job_they_may_run_from_its_delete_page(adder):
    task = make_schedule()
    assert adder.post(delete_url(task), {"post": "yes"}).status_code == 302
    assert not PeriodicTask.objects.filter(pk=task.pk).exists()


def test_a_superuser_deletes_any_schedule(root):
    task = make_schedule("backup", task=RUN_COMMAND, kwargs='{"command": "check"}')
    assert root.post(delete_url(task), {"post": "yes"}).status_code == 302
    other = make_schedule("mul", task=MUL)
    response = act(root, "delete_selected", other, post="yes")
    assert not PeriodicTask.objects.filter(pk__in=[task.pk, other.pk]).exists()
    assert "Successfully deleted 1 periodic task." in said(response)


# The operator's CLI ---------------------------------------------------------------------


def test_the_parameters_fragment_of_a_job_the_user_may_not_run_is_refused(planner):
    url = reverse("scheduling:parameters")
    assert planner.get(url, {"task": RUN_COMMAND}).status_code == 403


def test_the_parameters_fragment_serves_the_jobs_the_user_may_run(adder):
    response = adder.get(reverse("scheduling:parameters"), {"task": ADD})
    assert response.status_code == 200
    assert 'name="param-x"' in response.content.decode()


def test_manage_py_schedules_is_an_operators_tool_that_may_schedule_any_task_and_says_so():
    import io

    from django.core.management import call_command, load_command_class

    call_command("schedules", "add", "mul by cli", "--job", MUL, "--every", "10m",
                 stdout=io.StringIO())  # fmt: skip
    assert PeriodicTask.objects.filter(name="mul by cli", task=MUL).exists()
    help_text = load_command_class("apps.scheduling", "schedules").help
    assert "operator" in help_text and "per-job permissions" in help_text
