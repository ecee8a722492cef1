"""The Schedule model and its options: the rules they keep themselves."""

import pytest
from django.core.exceptions import ValidationError

from apps.scheduling.models import Schedule, ScheduleOptions

from .makers import make_schedule

pytestmark = pytest.mark.django_db


def make_options(**fields) -> ScheduleOptions:
    fields.setdefault("periodic_task", make_schedule())
    return ScheduleOptions(**fields)


@pytest.mark.parametrize("grace", [-1, 7 * 24 * 3600 + 1, 99999999999999])
def test_options_refuse_a_grace_period_out_of_bounds(grace):
    with pytest.raises(ValidationError) as refused:
        make_options(grace_seconds=grace).full_clean()
    assert list(refused.value.message_dict) == ["grace_seconds"]


def test_options_refuse_an_address_that_is_not_one_and_name_it():
    with pytest.raises(ValidationError) as refused:
        make_options(alert_recipients="ops@example.com, nobody\r\nBcc: x@y.z").full_clean()
    assert "is not an email address" in refused.value.message_dict["alert_recipients"][0]


def test_options_keep_their_addresses_in_one_tidy_list():
    options = make_options(alert_recipients=" a@example.com ,, b@example.com ")
    options.full_clean()
    assert options.alert_recipients == "a@example.com, b@example.com"


def test_a_schedules_options_are_reached_by_their_name():
    task = make_schedule(options={"grace_seconds": 60})
    schedule = Schedule.objects.with_schedules().get(pk=task.pk)
    assert schedule.options.grace_seconds == 60
