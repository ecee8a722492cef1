"""The audit log: who changed a schedule, a token, a permission or ran a control action,
when, from where (admin, CLI, API, web), field by field; shown in one Audit list and on
the schedule's admin page."""

import json
from io import StringIO

import pytest
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django_celery_beat.models import PeriodicTask

from apps.api.models import ApiToken
from apps.audit.models import AuditEntry, ControlAction, Via
from apps.audit.recording import record
from apps.jobs.secrets import MASK
from apps.scheduling.forms import form_data
from apps.scheduling.models import Schedule
from tests.helpers import make_superuser, make_user
from tests.jobs.secret_job import NAME as SECRET_JOB
from tests.jobs.secret_job import SECRET
from tests.scheduling.makers import make_schedule

pytestmark = pytest.mark.django_db

AUDIT_LIST = "/admin/audit/auditentry/"


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def entries_about(obj) -> list[AuditEntry]:
    content_type = ContentType.objects.get_for_model(obj)
    return list(AuditEntry.objects.filter(content_type=content_type, object_pk=str(obj.pk)))


def change_url(task: PeriodicTask) -> str:
    return reverse("admin:django_celery_beat_periodictask_change", args=[task.pk])


def edit_in_admin(client: Client, task: PeriodicTask, **values) -> None:
    data = form_data(name=task.name, regtask=task.task, **values)
    response = client.post(change_url(task), data)
    assert response.status_code == 302, response.context["adminform"].form.errors


def test_an_admin_change_of_a_schedule_is_in_the_audit_list_with_who_via_and_the_diff():
    root = make_superuser()
    task = make_schedule("nightly add")
    admin = logged_in(root)
    edit_in_admin(admin, task, **{"param-x": "7", "param-y": "3", "minute": "0", "hour": "3"})
    (entry,) = [e for e in entries_about(task) if e.action == AuditEntry.Action.UPDATE]
    assert (entry.actor, entry.via) == (root, Via.ADMIN)
    old, new = entry.changes_dict["kwargs"]
    assert (json.loads(old), json.loads(new)) == ({"x": 2, "y": 3}, {"x": 7, "y": 3})
    page = admin.get(AUDIT_LIST, {"via": "admin"}).content.decode()
    assert "nightly add" in page and "root" in page and "kwargs" in page


def test_the_schedule_admin_history_shows_its_changes_and_those_of_its_options():
    root = make_superuser()
    task = make_schedule("nightly add")
    admin = logged_in(root)
    edit_in_admin(admin, task, **{"param-x": "7", "param-y": "3", "minute": "0", "hour": "3",
                                  "overlap": "skip"})  # fmt: skip
    history = reverse("admin:django_celery_beat_periodictask_history", args=[task.pk])
    page = admin.get(history).content.decode()
    assert "History: nightly add" in page
    assert "Keyword arguments" in page and "Overlap" in page and "root" in page
    assert "via admin" in page.lower()
    assert f'href="{history}"' in admin.get(change_url(task)).content.decode()  # its link


def test_schedules_add_and_disable_from_the_cli_are_recorded_as_cli_with_the_os_user():
    call_command("schedules", "add", "hourly add", "--job", "apps.demo.tasks.add",
                 "--every", "1h", "x=1", "y=2", stdout=StringIO())  # fmt: skip
    call_command("schedules", "disable", "hourly add", stdout=StringIO())
    task = PeriodicTask.objects.get(name="hourly add")
    entries = entries_about(task)
    assert {e.via for e in entries} == {Via.CLI}
    assert all(e.actor_label for e in entries)
    assert next(e.changes_dict["enabled"] for e in entries if "enabled" in e.changes_dict) == [
        "True", "False"]  # fmt: skip
    assert AuditEntry.objects.filter(action=AuditEntry.Action.CREATE, via=Via.CLI,
                                     object_repr__contains="hourly add").exists()  # fmt: skip


def test_creating_and_revoking_an_api_token_are_audited():
    root = make_superuser()
    admin = logged_in(root)
    admin.post("/admin/api/apitoken/add/", {"user": root.pk, "name": "export"})
    api_token = ApiToken.objects.get()
    admin.post("/admin/api/apitoken/", {"action": "revoke", "_selected_action": [api_token.pk]})
    created, revoked = sorted(entries_about(api_token), key=lambda e: e.timestamp)
    assert (created.action, created.via, created.actor) == (AuditEntry.Action.CREATE,
                                                            Via.ADMIN, root)  # fmt: skip
    assert "hashed_secret" not in created.changes_dict
    assert revoked.changes_dict["revoked_at"][0] == "None" and revoked.actor == root


def test_giving_a_user_a_jobs_permission_is_audited_with_the_permission_named():
    root, alice = make_superuser(), make_user("alice")
    run_add = Permission.objects.get(codename="run_apps.demo.tasks.add")
    admin = logged_in(root)
    response = admin.post(reverse("admin:auth_user_change", args=[alice.pk]), {
        "username": "alice", "is_active": "on", "is_staff": "on",
        "user_permissions": [run_add.pk], "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00", "initial-date_joined_0": "2026-01-01",
        "initial-date_joined_1": "00:00:00",
    })  # fmt: skip
    assert response.status_code == 302
    (entry,) = [e for e in entries_about(alice) if "user_permissions" in e.changes_dict]
    change = entry.changes_dict["user_permissions"]
    assert change["operation"] == "add" and "Can run Add two numbers" in change["objects"][0]
    assert (entry.actor, entry.via) == (root, Via.ADMIN)


def test_a_control_action_is_recorded_through_the_one_function_and_listed():
    root = make_superuser()
    record("pause_queue", "default", user=root, via=Via.WEB, changes={"paused": [False, True]})
    control = ContentType.objects.get_for_model(ControlAction, for_concrete_model=False)
    entry = AuditEntry.objects.get(content_type=control)
    assert (entry.object_pk, entry.actor, entry.via) == ("default", root, Via.WEB)
    assert entry.changes_dict == {"paused": ["False", "True"]}
    page = logged_in(root).get(AUDIT_LIST, {"via": "web"}).content.decode()
    assert "pause_queue: default" in page


def test_only_staff_with_the_view_permission_see_the_audit_list():
    record("pause_queue", "default")
    plain_staff = make_user("bob")
    assert logged_in(plain_staff).get(AUDIT_LIST).status_code == 403
    auditor = make_user("carol")
    auditor.user_permissions.add(Permission.objects.get(codename="view_auditentry"))
    assert logged_in(auditor).get(AUDIT_LIST).status_code == 200
    assert logged_in(make_user("dave", staff=False)).get(AUDIT_LIST).status_code == 302


def test_the_audit_list_filters_by_object_type_user_and_via():
    root, alice = make_superuser(), make_user("alice")
    record("pause_queue", "default", user=root, via=Via.WEB)
    record("shrink_pool", "worker-1", user=alice, via=Via.API)
    admin = logged_in(root)
    by_user = admin.get(AUDIT_LIST, {"actor__id__exact": alice.pk}).content.decode()
    assert "shrink_pool" in by_user and "pause_queue" not in by_user
    by_via = admin.get(AUDIT_LIST, {"via": "web"}).content.decode()
    assert "pause_queue" in by_via and "shrink_pool" not in by_via
    control = ContentType.objects.get_for_model(ControlAction, for_concrete_model=False)
    by_type = admin.get(AUDIT_LIST, {"resource_type": control.pk}).content.decode()
    assert "pause_queue" in by_type and "shrink_pool" in by_type


def test_a_secret_in_a_schedule_row_written_by_hand_is_masked_in_the_diff():
    task = Schedule.objects.create(name="by hand", task=SECRET_JOB,
                                   kwargs=json.dumps({"token": SECRET}),
                                   crontab=make_schedule("other").crontab)  # fmt: skip
    task.kwargs = json.dumps({"token": SECRET + "2"})
    task.save()
    text = json.dumps([e.changes for e in entries_about(task)])
    assert SECRET not in text and MASK in text


def test_a_change_inside_an_api_request_is_recorded_as_the_token_user_via_api(rf):
    """The middleware reads the actor when the entry is written: after the API has
    authenticated its token (ninja sets request.auth), with no session involved."""
    from django.contrib.auth.models import AnonymousUser

    from apps.audit.context import AuditMiddleware

    alice = make_user("alice")

    def api_view(request):
        request.auth = alice  # what token authentication does inside the view
        return record("pause_queue", "default")

    request = rf.post("/api/queues/default/pause")
    request.user = AnonymousUser()
    entry = AuditMiddleware(api_view)(request)
    entry.refresh_from_db()
    assert (entry.actor, entry.via) == (alice, Via.API)
