"""A person pauses and resumes a queue from the dashboard, with a real worker behind it."""

import os
import shutil

import pytest
from django.core.cache import cache

from apps.control.models import QueuePause
from apps.jobs.models import Run, State
from tests.browser_fixtures import login
from tests.helpers import make_superuser, wait_for

from .helpers import active_queues, send_adds
from .test_worker_restart import start_worker

# Set to a folder (e.g. docs/img) to keep the screenshot of the paused queue.
SCREENSHOTS = os.environ.get("SWITCHYARD_SCREENSHOTS", "")


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_person_pauses_and_resumes_a_queue_then_grows_a_workers_pool(
    page, live_server, start_process, test_queue, tmp_path
):
    from playwright.sync_api import expect

    make_superuser("root")
    worker = "ctl-browser@localhost"
    start_worker(start_process, test_queue, worker)
    login(page, live_server, "root")
    page.goto(f"{live_server.url}/")
    row = page.locator("#part-queues tr.queue", has_text=test_queue)

    row.get_by_role("button", name="Pause").click()

    expect(page.locator(".messages")).to_contain_text(f"Queue {test_queue} paused")
    expect(row.locator(".queue-state")).to_have_text("paused")
    assert QueuePause.objects.filter(queue=test_queue).exists()
    wait_for(lambda: active_queues(worker) == [])
    runs = send_adds(test_queue, 2)
    cache.clear()  # the broker snapshot of a few seconds ago did not hold them yet
    page.reload()
    expect(row).to_contain_text("messages wait")
    expect(row.locator("td").nth(1)).to_have_text("2")
    shot = tmp_path / "control-paused-queue.png"
    page.locator("#part-queues").screenshot(path=shot)
    if SCREENSHOTS:
        shutil.copy(shot, SCREENSHOTS)

    row.get_by_role("button", name="Resume").click()

    expect(row.locator(".queue-state")).to_have_text("active")
    pks = [r.pk for r in runs]
    wait_for(lambda: Run.objects.filter(pk__in=pks, state=State.SUCCEEDED).count() == 2)

    page.get_by_role("link", name=worker).click()  # the dashboard's worker list
    expect(page.locator(".pool-processes")).to_have_text("1")
    page.get_by_role("button", name="Grow").click()
    expect(page.locator(".messages")).to_contain_text(f"{worker}: pool grown.")

    # The pool starts the new process on its own thread, a moment after it answered.
    def shows_two() -> bool:
        page.reload()
        return page.locator(".pool-processes").inner_text() == "2"

    wait_for(shows_two)
    page.screenshot(path=tmp_path / "control-worker.png", full_page=True)
    if SCREENSHOTS:
        shutil.copy(tmp_path / "control-worker.png", SCREENSHOTS)
