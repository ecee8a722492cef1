"""A person in a real browser filters /runs/ by state and a parameter, asks to retry
every failed run of the filter, confirms the count, and the runs run again."""

import pytest

from apps.jobs.models import Run, State
from tests.browser_fixtures import login
from tests.helpers import make_run, make_superuser, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ADD = "apps.demo.tasks.add"


def test_a_filtered_bulk_retry_goes_through_the_confirmation(page, live_server, celery_worker):
    chosen = [make_run(ADD, state=State.FAILED, parameters={"x": 5, "y": 1}) for _ in range(3)]
    for _ in range(2):
        make_run(ADD, state=State.FAILED, parameters={"x": 6, "y": 1})
    make_run(ADD, state=State.SUCCEEDED, parameters={"x": 5, "y": 1})
    make_superuser("root")
    login(page, live_server, "root")

    page.goto(f"{live_server.url}/runs/")
    page.select_option("#id_state", ["failed"])
    page.fill("#id_param", "x=5")
    page.click("#run-filters button[type=submit]")
    page.wait_for_url("**/runs/?*param=x%3D5*")
    assert page.locator("table.runs tbody tr").count() == 3
    page.click("#bulk-actions >> text=Retry failed…")
    page.wait_for_url("**/runs/bulk/?action=retry*")
    assert "3 runs would be retried" in " ".join(page.text_content("#bulk-count").split())
    page.click("#bulk-confirm")
    page.wait_for_url("**/runs/?*")

    assert "3 of 3 runs retried." in page.text_content(".messages")
    retried = Run.objects.filter(rerun_of__in=chosen)
    wait_for(lambda: retried.filter(state=State.SUCCEEDED).count() == 3, timeout=60)
    assert Run.objects.filter(rerun_of__isnull=False).count() == 3
