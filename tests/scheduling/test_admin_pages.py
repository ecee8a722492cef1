"""The change list and change page: what each schedule did and will do; the preview fragments."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from apps.jobs.models import State
from tests.helpers import make_superuser, make_user
from tests.scheduling.makers import make_interval, make_run, make_schedule

pytestmark = pytest.mark.django_db

LIST_URL = reverse("admin:django_celery_beat_periodictask_changelist")
PREVIEW_URL = reverse("scheduling:preview")
PARAMETERS_URL = reverse("scheduling:parameters")


@pytest.fixture
def staff(client):
    client.force_login(make_superuser())
    return client


def change_url(task) -> str:
    return reverse("admin:django_celery_beat_periodictask_change", args=[task.pk])


def row_of(response, task) -> str:
    html = response.content.decode()
    start = html.index(f'value="{task.pk}" class="action-select"')
    return html[start : html.index("</tr>", start)]


# Change list ------------------------------------------------------------------------


def test_the_change_list_shows_next_run_last_run_last_success_and_runs_in_24_hours(staff):
    task = make_schedule()
    make_run(task, State.SUCCEEDED, ago=dt.timedelta(hours=30))
    success = make_run(task, State.SUCCEEDED, ago=dt.timedelta(hours=3))
    last = make_run(task, State.FAILED, ago=dt.timedelta(hours=1))
    row = row_of(staff.get(LIST_URL), task)
    assert "At 03:00 (UTC)" in row
    assert "03:00 UTC" in row.split("field-next_run")[1]
    assert f'href="{reverse("jobs:run", args=[last.pk])}"' in row
    assert "(failed)" in row
    last_success = success.finished_at.strftime("%Y-%m-%d %H:%M")
    assert last_success in row.split("field-last_success")[1]
    assert '<td class="field-runs_last_day">2</td>' in row


def test_the_change_list_shows_a_dash_for_a_disabled_schedules_next_run(staff):
    task = make_schedule(enabled=False)
    assert '<td class="field-next_run">-</td>' in row_of(staff.get(LIST_URL), task)


def test_the_change_list_queries_do_not_grow_with_the_number_of_schedules(staff):
    def queries_for_list() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert staff.get(LIST_URL).status_code == 200
        return len(queries)

    for n in range(3):
        make_run(make_schedule(f"few {n}", interval=make_interval(n + 1)))
    few = queries_for_list()
    for n in range(12):
        task = make_schedule(f"many {n}", interval=make_interval(n + 5))
        make_run(task)
        make_run(task, State.FAILED)
    assert queries_for_list() == few


# Change page --------------------------------------------------------------------------


def test_the_change_page_lists_the_schedules_recent_runs_linking_to_each(staff):
    task = make_schedule()
    runs = [make_run(task, ago=dt.timedelta(minutes=m)) for m in (50, 40, 30)]
    other = make_run(make_schedule("another"))
    html = staff.get(change_url(task)).content.decode()
    recent = html[html.index('id="switchyard-recent-runs"') :]
    for run in runs:
        assert f'href="{reverse("jobs:run", args=[run.pk])}"' in recent
    assert f'href="{reverse("jobs:run", args=[other.pk])}"' not in recent


def test_the_change_page_previews_five_runs_in_the_schedules_zone_and_the_viewers(staff, settings):
    settings.TIME_ZONE = "America/New_York"
    task = make_schedule()
    task.crontab.timezone = "Asia/Tokyo"
    task.crontab.save()
    preview = staff.get(change_url(task)).context["schedule_preview"]
    assert preview.description == "At 03:00 (Asia/Tokyo)"
    assert (preview.schedule_zone, preview.viewer_zone) == ("Asia/Tokyo", "America/New_York")
    assert len(preview.runs) == 5
    assert all("03:00 JST" in row.in_schedule_zone for row in preview.runs)
    assert all(" EST " in row.in_viewer_zone or " EDT " in row.in_viewer_zone
               for row in preview.runs)  # fmt: skip


# Preview and parameter fragments ------------------------------------------------------


def test_the_preview_follows_the_form_values_for_every_kind(staff):
    shown = {
        "interval": {"kind": "interval", "every": "90", "period": "seconds"},
        "crontab": {"kind": "crontab", "minute": "*/15", "hour": "9-17", "day_of_week": "1-5",
                    "timezone": "Europe/Berlin"},
        "solar": {"kind": "solar", "event": "sunset", "latitude": "52.5", "longitude": "13.4"},
        "clocked": {"kind": "clocked", "clocked_time": "2036-01-02T03:04", "timezone": "UTC"},
    }  # fmt: skip
    for values in shown.values():
        response = staff.get(PREVIEW_URL, values)
        preview = response.context["schedule_preview"]
        assert len(preview.runs) == (1 if values["kind"] == "clocked" else 5), values
    crontab = staff.get(PREVIEW_URL, shown["crontab"]).context["schedule_preview"]
    assert crontab.description.startswith("Every 15 minutes, between 09:00 and 17:59")
    assert b"switchyard-next-run" in staff.get(PREVIEW_URL, shown["crontab"]).content


def test_the_preview_shows_what_is_wrong_with_the_schedule_fields(staff):
    response = staff.get(PREVIEW_URL, {"kind": "crontab", "minute": "75", "timezone": "UTC"})
    assert "minute" in response.context["schedule_preview"]["errors"]
    assert b"errorlist" in response.content


def test_the_preview_and_parameters_are_for_staff_only(client):
    client.force_login(make_user("bob", staff=False))
    assert client.get(PREVIEW_URL, {"kind": "interval", "every": "5"}).status_code == 302
    assert client.get(PARAMETERS_URL, {"task": "apps.demo.tasks.add"}).status_code == 302


def test_the_parameters_fragment_gives_a_catalog_jobs_typed_fields(staff):
    html = staff.get(PARAMETERS_URL, {"task": "apps.demo.tasks.add"}).content.decode()
    assert 'name="param-x"' in html
    assert 'name="param-y"' in html
    assert 'data-catalog="yes"' in html


def test_the_parameters_fragment_points_other_tasks_to_the_json_arguments(staff):
    html = staff.get(PARAMETERS_URL, {"task": "apps.demo.tasks.mul"}).content.decode()
    assert 'data-catalog="no"' in html
    assert "param-" not in html
