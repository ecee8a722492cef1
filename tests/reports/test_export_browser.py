"""A person on /runs/ clicks Export CSV, watches the run page, downloads the file."""

import re

import pytest
from playwright.sync_api import expect

from apps.jobs.models import State
from apps.reports import export
from tests.browser_fixtures import login
from tests.helpers import make_user
from tests.reports.helpers import EXPORT_JOB, make_runs, read_csv

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def site(settings, tmp_path, live_server):
    settings.MEDIA_ROOT = tmp_path
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = False
    return live_server


def test_export_csv_from_the_runs_list_and_download_it(celery_worker, site, page):
    make_user("alice", jobs=(EXPORT_JOB, "apps.demo.tasks.add"))
    make_runs(2500, state=State.FAILED)
    make_runs(30, state=State.SUCCEEDED)
    login(page, site, "alice")

    page.goto(f"{site.url}/runs/?state=failed")
    page.get_by_role("button", name="Export CSV").click()
    expect(page).to_have_url(re.compile(r"/runs/\d+/$"))
    link = page.get_by_role("link", name="Download CSV")
    expect(link).to_be_visible(timeout=60_000)

    with page.expect_download() as info:
        link.click()
    rows = read_csv(info.value.path().read_bytes())
    assert rows[0] == export.HEADER
    assert len(rows) == 1 + 2500
