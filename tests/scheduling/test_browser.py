"""A person in a real browser: schedule a catalog job through its typed form, see its next
runs while editing, run it now and see the run on the schedule's page."""

import json

import pytest
from django_celery_beat.models import PeriodicTask

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
    page.wait_for_function(
        "document.querySelector('#switchyard-preview').textContent.includes('Every 5 minutes')"
    )
    rows = page.locator("#switchyard-preview tr.switchyard-next-run")
    assert rows.count() == 5
    assert "IST (+05:30)" in rows.first.text_content()
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
