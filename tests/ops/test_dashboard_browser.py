"""A person opens the dashboard in Chromium and watches it refresh itself."""

import pytest

from apps.jobs.catalog import get_job
from apps.jobs.dispatch import start_run
from apps.jobs.models import Run, Source
from apps.ops import heartbeat
from tests.browser_fixtures import login
from tests.helpers import make_superuser, wait_for

from .makers import make_finished_run
from .test_dashboard import stop


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_person_sees_the_worker_a_run_in_progress_and_the_charts(
    page, live_server, celery_worker
):
    from playwright.sync_api import expect

    make_superuser("root")
    heartbeat.record("beat")
    make_finished_run(seconds=2)
    run = start_run(get_job("apps.demo.tasks.countdown"), {"seconds": 30}, source=Source.WEB)
    try:
        wait_for(lambda: Run.objects.filter(pk=run.pk, progress_done__gte=1).exists())
        login(page, live_server, "root")
        page.goto(f"{live_server.url}/")
        # The part reloads every 5 s from a snapshot cached 5 s: allow a few reloads.
        expect(page.locator("#part-workers")).to_contain_text(celery_worker.hostname,
                                                              timeout=30_000)  # fmt: skip
        bar = page.locator("#part-runs [role=progressbar]")
        expect(bar).to_be_visible()
        first = int(bar.get_attribute("aria-valuenow"))
        # The runs part reloads itself every few seconds: the bar moves without a reload.
        wait_for(lambda: int(bar.get_attribute("aria-valuenow") or 0) > first, timeout=20)
        assert page.locator("#part-charts svg.chart").count() == 2
        expect(page.locator("#part-charts svg.chart rect.state-succeeded").first).to_be_attached()
    finally:
        stop(run)
