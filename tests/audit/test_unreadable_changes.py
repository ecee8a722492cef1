"""An audit entry whose stored changes are not a JSON object (a row written by hand or
by another tool) shows as unreadable changes beside the normal entries: the Audit list
and the schedule's History page still load."""

import pytest
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django.urls import reverse

from apps.audit.models import AuditEntry
from tests.helpers import make_superuser
from tests.scheduling.makers import make_schedule

pytestmark = pytest.mark.django_db


@pytest.fixture
def schedule_with_odd_entries():
    task = make_schedule("nightly add")  # its creation is recorded as a normal entry
    about = {"content_type": ContentType.objects.get_for_model(task), "object_pk": str(task.pk),
             "object_repr": str(task), "action": AuditEntry.Action.UPDATE}  # fmt: skip
    AuditEntry.objects.create(changes="just a string", **about)
    AuditEntry.objects.create(changes=[1, 2], **about)
    return task


@pytest.fixture
def root() -> Client:
    client = Client()
    client.force_login(make_superuser())
    return client


def test_the_audit_list_shows_changes_that_are_not_an_object_as_unreadable(
    root, schedule_with_odd_entries
):
    response = root.get("/admin/audit/auditentry/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "(changes not readable: a string, not a JSON object)" in page
    assert "(changes not readable: an array, not a JSON object)" in page
    assert "change:" in page or "changes:" in page  # the normal entry, as before


def test_an_unreadable_entrys_own_page_says_so(root, schedule_with_odd_entries):
    entry = AuditEntry.objects.get(changes="just a string")
    page = root.get(reverse("admin:audit_auditentry_change", args=[entry.pk]))
    assert page.status_code == 200
    assert "(changes not readable: a string, not a JSON object)" in page.content.decode()


def test_the_schedules_history_shows_changes_that_are_not_an_object_as_unreadable(
    root, schedule_with_odd_entries
):
    history = reverse("admin:django_celery_beat_periodictask_history",
                      args=[schedule_with_odd_entries.pk])  # fmt: skip
    response = root.get(history)
    assert response.status_code == 200
    page = response.content.decode()
    assert "(changes not readable: a string, not a JSON object)" in page
    assert "(changes not readable: an array, not a JSON object)" in page
    assert "Keyword arguments" in page  # the creation's changes, as before
