"""A person in a real browser: start the countdown, watch it progress live, see it end."""

import time

import pytest

from tests.browser_fixtures import login
from tests.helpers import make_superuser

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def progress_widths_until_done(page, timeout: float = 60.0) -> list[str]:
    """Sample the bar's width until the run's state reads succeeded (or time runs out)."""
    widths: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        width = page.evaluate("document.getElementById('run-progress')?.style.width || ''")
        if width and (not widths or widths[-1] != width):
            widths.append(width)
        if page.text_content("#run-state").strip().lower() == "succeeded":
            break
        page.wait_for_timeout(150)
    return widths


def test_a_staff_user_starts_the_countdown_and_watches_it_succeed(page, live_server,
                                                                   celery_worker):  # fmt: skip
    make_superuser("root")
    login(page, live_server, "root")
    page.goto(f"{live_server.url}/jobs/")
    page.click("text=Count down")
    page.fill("#id_seconds", "3")
    page.click("button[type=submit]:has-text('Run')")
    page.wait_for_url(f"{live_server.url}/runs/*/")
    page.evaluate("window.sameDocument = true")  # gone if the page reloads

    widths = progress_widths_until_done(page)

    assert page.text_content("#run-state").strip().lower() == "succeeded"
    assert len(widths) >= 2, widths  # the bar moved at least once
    assert page.evaluate("window.sameDocument === true")
    assert page.get_attribute("#run-live", "hx-trigger") is None  # polling stopped
    assert "counted down 3 s" in page.text_content("#run-live")
