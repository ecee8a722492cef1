"""A person in a real browser: start the demo pipeline and watch its graph live."""

import pytest

from tests.browser_fixtures import login
from tests.helpers import make_superuser

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_pipeline_graph_updates_live_until_the_pipeline_succeeds(page, live_server,
                                                                     celery_worker):  # fmt: skip
    make_superuser("root")
    login(page, live_server, "root")
    page.goto(f"{live_server.url}/jobs/")
    page.click("text=Sum of squares")
    page.fill("#id_count", "3")
    page.fill("#id_pause", "3")
    page.click("button[type=submit]:has-text('Run')")
    page.wait_for_url(f"{live_server.url}/runs/*/")
    page.evaluate("window.sameDocument = true")  # gone if the page reloads

    # The steps appear (the pipeline's task records them) and the last one waits while
    # the fan-out runs (3 s); then, with no reload, every step is drawn succeeded.
    page.wait_for_selector('[data-step="double"][data-state="waiting"]', timeout=30_000)
    page.wait_for_selector('[data-step="double"][data-state="succeeded"]', timeout=60_000)
    page.wait_for_function(
        "document.getElementById('pipeline-state').textContent.trim() === 'Succeeded'",
        timeout=30_000,
    )

    assert page.evaluate("window.sameDocument === true")
    assert page.get_attribute("#run-live", "hx-trigger") is None  # polling stopped
    assert "10" in page.text_content('[data-step="double"]')  # 2 * (0 + 1 + 4)
