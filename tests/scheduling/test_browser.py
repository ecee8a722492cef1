"""A person in a real browser: schedule a catalog job through its typed form, see its next
runs while editing, run it now and see the run on the schedule's page."""

import contextlib
import json

import pytest
from django_celery_beat.models import PeriodicTask
from playwright.sync_api import expect

from apps.jobs.models import Run, State
from tests.browser_fixtures import login
from tests.helpers import make_superuser, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_superuser_schedules_a_job_sees_its_next_runs_and_runs_it_now(
    page, live_server, celery_worker
):
    make_superuser("root")
    login(page, live_server, "root")
    page.goto(f"{live_server.url}/admin/django_celery_beat/periodictask/add/")

    page.fill("#id_name", "add every five minutes")
    page.select_option("#id_regtask", "apps.demo.tasks.add")
    page.wait_for_selector("input[name=param-x]")  # the job's typed form came in
    assert not page.is_visible("fieldset.switchyard-raw-arguments")
    page.fill("input[name=param-x]", "20")
    page.fill("input[name=param-y]", "22")

    page.check("input[name=kind][value=crontab]")
    page.fill("#id_minute", "*/5")
    page.fill("#id_hour", "*")
    page.select_option("#id_timezone", "Asia/Kolkata")
    # Wait for the answer asserted on (the zone), not one an earlier answer also shows.
    rows = page.locator("#switchyard-preview tr.switchyard-next-run")
    expect(rows.first).to_contain_text("IST (+05:30)")
    assert rows.count() == 5
    assert "Every 5 minutes" in page.text_content("#switchyard-preview")
    assert not page.is_visible("#id_every")  # only the crontab's fields are shown

    page.click("input[name=_continue]")
    page.wait_for_selector("#switchyard-recent-runs")
    task = PeriodicTask.objects.get(name="add every five minutes")
    assert json.loads(task.kwargs) == {"x": 20, "y": 22}
    assert str(task.crontab.timezone) == "Asia/Kolkata"

    page.click("#switchyard-run-now")
    page.wait_for_selector("text=1 run started.")
    succeeded = Run.objects.filter(schedule_name=task.name, state=State.SUCCEEDED)
    run = wait_for(succeeded.first, timeout=60)
    page.reload()
    link = page.locator(f"#switchyard-recent-runs a[href='/runs/{run.pk}/']")
    assert link.count() == 1
    assert "succeeded" in page.text_content("#switchyard-recent-runs tr.switchyard-run")


def is_preview(url: str) -> bool:
    return "/schedules/preview/" in url


def test_a_slow_earlier_preview_answer_never_overwrites_a_later_one(page, live_server):
    """The UTC answer is held back until the Asia/Kolkata one has been shown."""
    make_superuser("root")
    login(page, live_server, "root")
    page.goto(f"{live_server.url}/admin/django_celery_beat/periodictask/add/")
    page.check("input[name=kind][value=crontab]")
    page.fill("#id_minute", "*/5")
    preview = page.locator("#switchyard-preview")
    expect(preview).to_contain_text("Every 5 minutes")

    held = []

    def hold_the_first(route):
        if not held:
            held.append(route)  # answered later, below
        else:
            route.continue_()

    page.route(is_preview, hold_the_first)
    with page.expect_request(lambda request: is_preview(request.url)):
        page.fill("#id_minute", "*/10")  # the UTC request: held
    settled = int(preview.get_attribute("data-settled") or 0)
    page.select_option("#id_timezone", "Asia/Kolkata")  # the later request: answered
    expect(preview).to_contain_text("Next runs (Asia/Kolkata)")
    # The stale answer arrives now; if the page aborted that request, there is none.
    with contextlib.suppress(Exception):
        held[0].continue_()
    # Both requests have ended (shown, dropped or aborted), or the stale one was shown.
    page.wait_for_function(
        """([settled]) => {
            const box = document.querySelector('#switchyard-preview');
            return Number(box.dataset.settled || 0) >= settled + 2
                || box.textContent.includes('Next runs (UTC)');
        }""",
        arg=[settled],
    )
    expect(preview).to_contain_text("Next runs (Asia/Kolkata)")
    expect(preview).to_contain_text("Every 10 minutes")
