"""django-celery-beat's own admin pages for schedule rows (interval, crontab, solar,
clocked) obey the same rules as the periodic task form: a row that beat would skip as
broken, or a clocked time that has passed, is refused with a message on the field, and
nothing is written.

These rows are shared: editing one changes every periodic task that uses it, so a user
may change or delete a row only if they may run the jobs of all of those tasks.
"""

import datetime as dt

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)

from tests.helpers import make_superuser, make_user
from tests.scheduling.makers import make_crontab, make_interval, make_schedule

pytestmark = pytest.mark.django_db


@pytest.fixture
def root(client):
    client.force_login(make_superuser())
    return client


def add_url(model) -> str:
    return reverse(f"admin:django_celery_beat_{model._meta.model_name}_add")


def change_url(row) -> str:
    return reverse(f"admin:django_celery_beat_{row._meta.model_name}_change", args=[row.pk])


def post(client, url: str, values: dict):
    """Post the page's form as the browser would (with its inline's management form)."""
    data = dict(values)
    for inline in client.get(url).context["inline_admin_formsets"]:
        prefix = inline.formset.prefix
        data |= {f"{prefix}-TOTAL_FORMS": 0, f"{prefix}-INITIAL_FORMS": 0}
    return client.post(url, data)


def rows(model) -> list[tuple]:
    return list(model.objects.order_by("pk").values_list())


def refused(client, url: str, values: dict, model) -> dict:
    before = rows(model)
    response = post(client, url, values)
    assert response.status_code == 200, "the row was saved"
    assert rows(model) == before
    return response.context["adminform"].form.errors


@pytest.mark.parametrize("every, period", [
    (3_000_000, "days"), (2**31 - 1, "seconds"), (1, "microseconds"), (999_999, "microseconds"),
    (0, "minutes"), (-1, "hours"),
])  # fmt: skip
def test_an_interval_out_of_bounds_is_refused_on_the_interval_page(root, every, period):
    errors = refused(root, add_url(IntervalSchedule), {"every": every, "period": period},
                     IntervalSchedule)  # fmt: skip
    assert "every" in errors or "period" in errors


def test_a_shared_interval_cannot_be_stretched_past_ten_years_from_its_own_page(root):
    interval = make_interval(10, "minutes")
    make_schedule(interval=interval, crontab=None)
    errors = refused(root, change_url(interval), {"every": 3_000_000, "period": "days"},
                     IntervalSchedule)  # fmt: skip
    assert "10 years" in str(errors["every"])


def test_an_interval_within_bounds_is_saved(root):
    response = post(root, add_url(IntervalSchedule), {"every": 90, "period": "seconds"})
    assert response.status_code == 302
    assert IntervalSchedule.objects.filter(every=90, period="seconds").exists()


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01", "1999-12-31", "2100-01-01"])
def test_a_clocked_time_out_of_range_is_refused_on_the_clocked_page(root, day):
    values = {"clocked_time_0": day, "clocked_time_1": "12:00:00"}
    errors = refused(root, add_url(ClockedSchedule), values, ClockedSchedule)
    assert "out of range" in str(errors["clocked_time"])


def test_a_clocked_time_in_range_is_saved(root):
    values = {"clocked_time_0": "2030-06-01", "clocked_time_1": "12:00:00"}
    assert post(root, add_url(ClockedSchedule), values).status_code == 302
    assert ClockedSchedule.objects.count() == 1


@pytest.mark.parametrize("field, value", [
    ("day_of_month", "31"),  # with month 2: a day that never occurs
    ("minute", "*/0"), ("hour", "24"), ("minute", "0-59/9223372036854775808"),
])  # fmt: skip
def test_a_crontab_beat_cannot_compute_is_refused_on_the_crontab_page(root, field, value):
    values = {"minute": "0", "hour": "3", "day_of_month": "*", "month_of_year": "2",
              "day_of_week": "*", "timezone": "UTC", field: value}  # fmt: skip
    errors = refused(root, add_url(CrontabSchedule), values, CrontabSchedule)
    assert errors


def test_a_crontab_that_occurs_is_saved_from_its_page(root):
    crontab = make_crontab("0 3 * * *")
    values = {"minute": "15", "hour": "4", "day_of_month": "*", "month_of_year": "*",
              "day_of_week": "1-5", "timezone": "Europe/Paris"}  # fmt: skip
    assert post(root, change_url(crontab), values).status_code == 302
    crontab.refresh_from_db()
    assert (crontab.minute, crontab.hour, str(crontab.timezone)) == ("15", "4", "Europe/Paris")


# A clocked time that has passed -------------------------------------------------------


def clocked_values(moment: dt.datetime) -> dict:
    local = timezone.localtime(moment)
    return {"clocked_time_0": f"{local:%Y-%m-%d}", "clocked_time_1": f"{local:%H:%M:%S}"}


def make_clocked(moment: dt.datetime) -> ClockedSchedule:
    return ClockedSchedule.objects.create(clocked_time=moment.replace(microsecond=0))


def test_a_one_off_schedules_time_cannot_be_moved_into_the_past_from_the_clocked_page(root):
    clocked = make_clocked(timezone.now() + dt.timedelta(days=2))
    make_schedule("once", clocked=clocked, crontab=None, one_off=True)
    past = timezone.now() - dt.timedelta(days=3)
    errors = refused(root, change_url(clocked), clocked_values(past), ClockedSchedule)
    assert errors["clocked_time"] == ["This time has passed: choose a time to come."]


def test_a_time_that_has_passed_is_refused_on_the_clocked_page_even_with_no_schedule_pending(
    root,
):
    """As the periodic task form refuses it for a disabled one-off schedule too."""
    clocked = make_clocked(timezone.now() + dt.timedelta(days=2))
    make_schedule("once", clocked=clocked, crontab=None, one_off=True, enabled=False)
    past = clocked_values(timezone.now() - dt.timedelta(hours=1))
    assert "has passed" in str(refused(root, change_url(clocked), past, ClockedSchedule))
    assert "has passed" in str(refused(root, add_url(ClockedSchedule), past, ClockedSchedule))


def test_a_clocked_row_whose_time_has_passed_may_be_saved_unchanged(root):
    """The periodic task form keeps a stored time that has passed too."""
    clocked = make_clocked(timezone.now() - dt.timedelta(days=1))
    response = post(root, change_url(clocked), clocked_values(clocked.clocked_time))
    assert response.status_code == 302


# Rows shared with schedules of jobs the user may not run -------------------------------
# `editor` may change and delete periodic tasks and schedule rows, and run `add` only.

ADD = "apps.demo.tasks.add"
BACKUP = "apps.maintenance.tasks.backup_database"


@pytest.fixture
def editor(client):
    user = make_user("editor", jobs=(ADD,))
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="django_celery_beat")
    )
    client.force_login(user)
    return client


def make_row(kind: str):
    if kind == "interval":
        return make_interval(1, "days"), {"every": 1, "period": "seconds"}
    if kind == "crontab":
        values = {"minute": "*", "hour": "*", "day_of_month": "*", "month_of_year": "*",
                  "day_of_week": "*", "timezone": "UTC"}  # fmt: skip
        return make_crontab("0 3 * * *"), values
    if kind == "solar":
        row = SolarSchedule.objects.create(event="sunrise", latitude="48.85", longitude="2.35")
        row.refresh_from_db()  # as the page reads it: 48.850000
        return row, {"event": "sunset", "latitude": "48.85", "longitude": "2.35"}
    row = make_clocked(timezone.now() + dt.timedelta(days=2))
    return row, clocked_values(timezone.now() + dt.timedelta(minutes=5))


def use(row, name: str, task: str = BACKUP, **fields) -> PeriodicTask:
    kind = row._meta.model_name.removesuffix("schedule")
    kwargs = '{"keep": 7}' if task == BACKUP else '{"x": 2, "y": 3}'
    schedule = {"crontab": None, kind: row}
    return make_schedule(name, task=task, kwargs=kwargs, one_off=kind == "clocked",
                         **schedule, **fields)  # fmt: skip


@pytest.mark.parametrize("kind", ["interval", "crontab", "solar", "clocked"])
def test_a_row_shared_with_a_forbidden_jobs_schedule_cannot_be_changed_from_its_page(editor, kind):
    row, values = make_row(kind)
    use(row, "mine", task=ADD)
    use(row, "backup-daily")
    errors = refused(editor, change_url(row), values, type(row))
    assert errors["__all__"] == [
        f"This {row._meta.verbose_name} ({row}) is used by schedules of jobs you may not run, "
        "so you may not change it: backup-daily (Back up the database)."
    ]


def test_a_disabled_schedule_of_a_forbidden_job_blocks_its_row_too(editor):
    row, values = make_row("interval")
    use(row, "backup-daily", enabled=False)
    assert "backup-daily" in str(refused(editor, change_url(row), values, IntervalSchedule))


@pytest.mark.parametrize("kind", ["interval", "crontab", "solar", "clocked"])
def test_a_row_whose_schedules_are_all_of_jobs_the_user_may_run_is_changed(editor, kind):
    row, values = make_row(kind)
    use(row, "mine", task=ADD)
    assert post(editor, change_url(row), values).status_code == 302


@pytest.mark.parametrize("kind", ["interval", "crontab", "solar", "clocked"])
def test_a_new_row_needs_no_job_permission_since_no_schedule_uses_it_yet(editor, kind):
    _, values = make_row(kind)
    before = type(_).objects.count()
    assert post(editor, add_url(type(_)), values).status_code == 302
    assert type(_).objects.count() == before + 1


def test_a_superuser_changes_a_row_shared_with_any_schedule(root):
    row, values = make_row("interval")
    use(row, "backup-daily")
    assert post(root, change_url(row), values).status_code == 302


def delete_url(row) -> str:
    return reverse(f"admin:django_celery_beat_{row._meta.model_name}_delete", args=[row.pk])


@pytest.mark.parametrize("kind", ["interval", "crontab", "solar", "clocked"])
def test_a_row_shared_with_a_forbidden_jobs_schedule_cannot_be_deleted(editor, kind):
    """Deleting the row would delete its schedules: the admin's own check of the
    schedules it would take with it refuses it."""
    row, _ = make_row(kind)
    task = use(row, "backup-daily")
    page = editor.get(delete_url(row))
    assert page.context["perms_lacking"] == {"periodic task"}
    assert editor.post(delete_url(row), {"post": "yes"}).status_code == 403
    changelist = reverse(f"admin:django_celery_beat_{row._meta.model_name}_changelist")
    data = {"action": "delete_selected", "_selected_action": [row.pk], "post": "yes"}
    assert editor.post(changelist, data).status_code == 403
    assert PeriodicTask.objects.filter(pk=task.pk).exists()
    assert type(row).objects.filter(pk=row.pk).exists()


def test_a_row_whose_schedules_are_all_of_jobs_the_user_may_run_is_deleted(editor):
    row, _ = make_row("interval")
    use(row, "mine", task=ADD)
    assert editor.post(delete_url(row), {"post": "yes"}).status_code == 302
    assert not IntervalSchedule.objects.filter(pk=row.pk).exists()
