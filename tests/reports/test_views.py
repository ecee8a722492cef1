"""Starting an export from /runs/, and who may download it."""

import datetime as dt

import pytest
from django.http import QueryDict
from django.urls import reverse
from django.utils import timezone

from apps.jobs import run_filters
from apps.jobs.models import Run, Source, State
from apps.reports import export
from apps.reports.models import Export
from tests.helpers import make_run, make_superuser, make_user
from tests.reports.helpers import EXPORT_JOB, read_csv

pytestmark = pytest.mark.django_db

START_URL = "/runs/export"


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


@pytest.fixture
def alice():
    return make_user("alice", jobs=(EXPORT_JOB, "apps.demo.tasks.add"))


def make_export(owner, **kw) -> Run:
    """An export run that has finished, with its file written."""
    run = make_run(EXPORT_JOB, requested_by=owner, state=State.STARTED)
    export.export_runs(run, kw.pop("filters", {}), **kw)
    Run.objects.filter(pk=run.pk).update(state=State.SUCCEEDED)
    return run


def download_url(run: Run) -> str:
    return f"/exports/{run.pk}/download"


# Starting an export -----------------------------------------------------------------


def test_export_starts_a_run_with_the_current_filters_and_shows_its_page(client, alice):
    client.force_login(alice)
    posted = {
        "state": ["failed", "cancelled"],
        "job": "apps.demo.tasks.add",
        "param.customer_id": "42",
        "date_from": "2026-01-01",
        "ignored": "x",
        "after": "5",
    }
    response = client.post(START_URL, posted)
    run = Run.objects.get(job_name=EXPORT_JOB)
    assert response.status_code == 302 and response["Location"] == run.get_absolute_url()
    stored = run_filters.read_text(run.parameters["filters"])
    assert stored == run_filters.read_query(QueryDict(
        "state=failed&state=cancelled&job=apps.demo.tasks.add&param.customer_id=42&date_from=2026-01-01"
    ))  # fmt: skip
    assert (run.source, run.requested_by) == (Source.WEB, alice)


def test_the_export_button_carries_every_filter_of_the_runs_list(client, alice):
    client.force_login(alice)
    page = client.get(reverse("jobs:runs"), {"state": ["failed", "cancelled"],
                                             "param.customer_id": "42", "worker": "w1",
                                             "after": "9"}).content.decode()  # fmt: skip
    button = page[page.index('class="export-csv"') :]
    button = button[: button.index("</form>")]
    for name, value in [("state", "failed"), ("state", "cancelled"),
                        ("param.customer_id", "42"), ("worker", "w1")]:  # fmt: skip
        assert f'name="{name}" value="{value}"' in button
    assert 'name="after"' not in button


def test_a_bad_parameter_condition_goes_back_to_the_runs_list_with_a_message(client, alice):
    client.force_login(alice)
    response = client.post(START_URL, {"param.1x": "2"}, follow=True)
    assert "Export not started: param.1x" in response.content.decode()
    assert not Run.objects.filter(job_name=EXPORT_JOB).exists()


def test_bad_filters_go_back_to_the_runs_list_with_a_message(client, alice):
    client.force_login(alice)
    response = client.post(START_URL, {"date_from": "not a date"}, follow=True)
    assert "Export not started" in response.content.decode()
    assert not Run.objects.filter(job_name=EXPORT_JOB).exists()


@pytest.mark.parametrize("field, day", [("date_to", "2100-01-01"), ("date_from", "1999-12-31"),
                                        ("date_to", "9999-12-31")])  # fmt: skip
def test_the_export_refuses_the_dates_the_runs_list_refuses(client, alice, field, day):
    """One rule for both (apps.scheduling.bounds): the export writes what /runs/ shows."""
    client.force_login(alice)
    shown = client.get(reverse("jobs:runs"), {field: day}).context["filters"]
    assert shown.errors[field]
    response = client.post(START_URL, {field: day}, follow=True)
    assert "Export not started" in response.content.decode()
    assert not Run.objects.filter(job_name=EXPORT_JOB).exists()


def test_export_needs_the_permission_to_run_the_export_job(client):
    client.force_login(make_user("bob"))
    assert client.post(START_URL, {}).status_code == 403


def test_export_is_a_post_only(client, alice):
    client.force_login(alice)
    assert client.get(START_URL).status_code == 405


def test_anonymous_visitors_are_sent_to_log_in(client):
    response = client.post(START_URL, {})
    assert response.status_code == 302 and "login" in response["Location"]


def test_the_runs_list_shows_the_export_button_with_the_filters(client, alice):
    client.force_login(alice)
    page = client.get(reverse("jobs:runs"), {"state": "failed"}).content.decode()
    assert 'action="/runs/export"' in page
    assert '<input type="hidden" name="state" value="failed">' in page


def test_the_runs_list_hides_the_button_from_those_who_may_not_export(client):
    client.force_login(make_user("bob", jobs=("apps.demo.tasks.add",)))
    assert "Export CSV" not in client.get(reverse("jobs:runs")).content.decode()


# Downloading --------------------------------------------------------------------------


def test_the_owner_downloads_the_csv(client, alice):
    make_run(requested_by=alice)
    run = make_export(alice)
    client.force_login(alice)
    response = client.get(download_url(run))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv"
    assert "attachment" in response["Content-Disposition"]
    rows = read_csv(b"".join(response.streaming_content))
    assert rows[0] == export.HEADER and len(rows) == 3


def test_another_user_may_not_download_it(client, alice):
    run = make_export(alice)
    client.force_login(make_user("mallory", jobs=(EXPORT_JOB,)))
    assert client.get(download_url(run)).status_code == 403


def test_a_superuser_may_download_anyones_export(client, alice):
    run = make_export(alice)
    client.force_login(make_superuser())
    assert client.get(download_url(run)).status_code == 200


def test_an_expired_export_is_gone(client, alice):
    run = make_export(alice, now=timezone.now() - dt.timedelta(hours=25))
    client.force_login(alice)
    assert client.get(download_url(run)).status_code == 410


def test_an_export_whose_file_was_removed_is_gone(client, alice):
    run = make_export(alice)
    Export.objects.get(run=run).path.unlink()
    client.force_login(alice)
    assert client.get(download_url(run)).status_code == 410


def test_a_run_without_an_export_is_not_found(client, alice):
    client.force_login(alice)
    assert client.get(download_url(make_run(requested_by=alice))).status_code == 404


@pytest.mark.parametrize("run_id", ["99999999999999999999999", str(2**63), "0"])
def test_an_id_no_run_can_have_is_not_found_rather_than_an_error(client, alice, run_id):
    client.force_login(alice)
    assert client.get(f"/exports/{run_id}/download").status_code == 404


def test_downloading_needs_a_login(client, alice):
    response = client.get(download_url(make_export(alice)))
    assert response.status_code == 302 and "login" in response["Location"]


# The run page -------------------------------------------------------------------------


def test_the_export_run_page_links_to_the_download_for_its_owner(client, alice):
    run = make_export(alice)
    client.force_login(alice)
    page = client.get(run.get_absolute_url()).content.decode()
    assert download_url(run) in page


def test_the_run_page_shows_no_link_to_others(client, alice):
    run = make_export(alice)
    client.force_login(make_user("erin", jobs=(EXPORT_JOB,)))  # she sees export runs
    page = client.get(run.get_absolute_url())
    assert page.status_code == 200
    assert download_url(run) not in page.content.decode()


def test_an_expired_export_says_so_on_its_run_page(client, alice):
    run = make_export(alice, now=timezone.now() - dt.timedelta(hours=25))
    client.force_login(alice)
    assert "This export has expired." in client.get(run.get_absolute_url()).content.decode()


# A stored file name is not trusted ------------------------------------------------------

UNSAFE_NAMES = ["../outside-secret.txt", "exports/../../outside-secret.txt",
                "exports/..", "exports/sub/x.csv", "exports/..\\x.csv", "exports/a\x00.csv",
                "/tmp/outside-secret.txt", "outside-secret.txt", "exports/"]  # fmt: skip


@pytest.mark.parametrize("file_name", UNSAFE_NAMES)
def test_an_export_whose_stored_name_leaves_the_exports_folder_is_not_found(
    client, settings, tmp_path, caplog, file_name
):
    from django.db import connection

    if "\x00" in file_name and connection.vendor == "postgresql":
        pytest.skip("PostgreSQL's text never stores NUL")
    settings.MEDIA_ROOT = tmp_path / "media"
    (tmp_path / "outside-secret.txt").write_text("secret")
    root = make_superuser()
    run = make_run(EXPORT_JOB, requested_by=root, state=State.SUCCEEDED)
    Export.objects.create(run=run, owner=root, file_name=file_name,
                          expires_at=timezone.now() + dt.timedelta(hours=1))  # fmt: skip
    client.force_login(root)
    response = client.get(download_url(run))
    assert response.status_code == 404
    assert b"secret" not in response.content
    assert "refused its file name" in caplog.text
