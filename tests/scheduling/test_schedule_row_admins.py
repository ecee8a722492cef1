"""django-celery-beat's own admin pages for schedule rows (interval, crontab, clocked) obey
the same bounds as the periodic task form (apps.scheduling.bounds): a row that beat would
skip as broken is refused with a message on the field, and nothing is written.

These rows are shared: editing one changes every periodic task that uses it.
"""

import pytest
from django.urls import reverse
from django_celery_beat.models import ClockedSchedule, CrontabSchedule, IntervalSchedule

from tests.helpers import make_superuser
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
