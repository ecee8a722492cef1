"""Rows out of bounds in the database (tests/scheduling/bad_rows.py): every page that
lists or shows schedules still answers, names them broken, and the rest still work."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from apps.scheduling import preview
from tests.helpers import make_superuser
from tests.scheduling.bad_rows import broken_names, make_bad_rows
from tests.scheduling.makers import make_interval, make_schedule

pytestmark = pytest.mark.django_db

LIST_URL = reverse("admin:django_celery_beat_periodictask_changelist")


@pytest.fixture
def staff(client):
    client.force_login(make_superuser())
    return client


@pytest.fixture
def bad_rows() -> dict[str, str]:
    return make_bad_rows("test-broken")


def test_every_bad_row_is_broken_and_a_good_one_is_not(bad_rows):
    good = make_schedule("good", interval=make_interval(1, "minutes"))
    tasks = PeriodicTask.objects.filter(name__in=bad_rows).select_related("options")
    problems = {task.name: preview.schedule_problem(task, timezone.now()) for task in tasks}
    assert [name for name in broken_names(bad_rows) if not problems[name]] == []
    assert [name for name in bad_rows if name.startswith("odd ") and problems[name]] == []
    assert preview.schedule_problem(good, timezone.now()) is None


def test_the_schedule_list_answers_and_marks_each_broken_row(staff, bad_rows):
    response = staff.get(LIST_URL, {"all": ""})
    assert response.status_code == 200
    assert response.content.decode().count('class="switchyard-broken"') == len(
        broken_names(bad_rows)
    )


def test_the_change_page_of_every_bad_row_answers_and_says_it_is_broken(staff, bad_rows):
    for task in PeriodicTask.objects.filter(name__in=broken_names(bad_rows)):
        url = reverse("admin:django_celery_beat_periodictask_change", args=[task.pk])
        response = staff.get(url)
        assert response.status_code == 200, task.name
        assert "Broken: beat skips this schedule" in response.content.decode(), task.name


def test_the_job_catalog_answers_with_bad_rows_of_its_job_and_shows_the_good_ones_next_run(
    staff, bad_rows
):
    make_schedule("good", interval=make_interval(1, "minutes"))
    response = staff.get(reverse("jobs:catalog"))
    assert response.status_code == 200
    entry = next(e for _, group in response.context["groups"] for e in group
                 if e.job.name == "apps.demo.tasks.add")  # fmt: skip
    assert entry.next_run_at is not None


@pytest.mark.parametrize(("every", "period"), [("3000000", "days"), ("2147483647", "days")])
def test_the_live_preview_answers_a_huge_interval_with_the_fields_error(staff, every, period):
    response = staff.get(reverse("scheduling:preview"),
                         {"kind": "interval", "every": every, "period": period})  # fmt: skip
    assert response.status_code == 200
    assert "out of range" in response.content.decode()


def test_schedules_list_and_next_answer_for_bad_rows(bad_rows):
    out = StringIO()
    call_command("schedules", "list", stdout=out)
    lines = [line for line in out.getvalue().splitlines() if line.startswith("bad ")]
    assert len(lines) == len(broken_names(bad_rows))
    assert all("next: broken" in line for line in lines)
    for name in broken_names(bad_rows):
        out = StringIO()
        call_command("schedules", "next", name, stdout=out)
        assert "broken: beat skips it" in out.getvalue(), name


def test_the_dashboard_shows_each_broken_schedule_once_the_sweep_has_seen_it(staff, bad_rows):
    from apps.ops.alerts import check_alerts

    check_alerts()
    response = staff.get(reverse("ops:part", args=["missed"]))
    assert response.status_code == 200
    assert response.content.decode().count('<tr class="broken">') == len(broken_names(bad_rows))


@pytest.mark.parametrize("name", ["bad kwargs not json", "bad args an object",
                                  "bad headers a list", "bad priority", "bad args 1e309",
                                  "bad args NaN", "bad kwargs lone surrogate"])  # fmt: skip
def test_run_now_of_a_row_whose_message_cannot_be_built_is_refused_with_a_message(
    staff, bad_rows, name
):
    from django.contrib.messages import get_messages

    from apps.jobs.models import Run

    task = PeriodicTask.objects.get(name=name)
    response = staff.post(LIST_URL, {"action": "run_now", "_selected_action": [task.pk]},
                          follow=True)  # fmt: skip
    assert response.status_code == 200
    [message] = [str(m) for m in get_messages(response.wsgi_request)]
    assert message.startswith(f"{name}: ")
    assert not Run.objects.exists()


def test_schedules_run_of_a_row_with_kwargs_not_json_exits_2(bad_rows):
    from tests.scheduling.test_cli import schedules

    code, _, error = schedules("run", "bad kwargs not json")
    assert (code, error) == (2, "kwargs: not valid JSON")


@pytest.mark.parametrize("name", ["bad args 1e309", "bad kwargs lone surrogate"])
def test_schedules_run_of_a_row_no_run_record_can_store_exits_2(bad_rows, name):
    """It printed the IntegrityError's traceback and exited 1."""
    from apps.jobs.models import Run
    from tests.scheduling.test_cli import schedules

    code, _, error = schedules("run", name)
    assert code == 2
    assert error.startswith(("args: ", "kwargs: "))
    assert not Run.objects.exists()


def test_duplicating_a_schedule_stored_with_a_line_break_gives_a_one_line_name(bad_rows):
    from apps.scheduling.models import Schedule

    task = Schedule.objects.get(name__startswith="odd name")
    copy = task.duplicate()
    assert copy.name == "odd name  Bcc: someone@example.com (copy)"
