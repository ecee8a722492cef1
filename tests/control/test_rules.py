"""The bounds of control values, and who may control: one function each."""

import pytest

from apps.control.rules import (
    MAX_RATE,
    Actor,
    ControlDenied,
    ControlError,
    autoscale_bounds,
    check,
    may_control,
    parse_rate,
    pool_step,
)
from tests.helpers import make_superuser, make_user

pytestmark = pytest.mark.once


@pytest.mark.parametrize(
    ("text", "stored"),
    [("10/m", "10/m"), (" 5/h ", "5/h"), ("7", "7/s"), ("1000000/s", "1000000/s")],
)
def test_a_rate_in_celerys_format_is_stored_with_its_unit(text, stored):
    assert parse_rate(text) == stored


@pytest.mark.parametrize(
    "text",
    ["", "0/m", "-1/m", "10/d", "10/min", "1.5/m", "10 / m", "abc", "1" * 40, "10/m\x00",
     f"{MAX_RATE + 1}/s", "\uff11\uff10/m", "10/m\x0b1", "nan", "inf/s"],
)  # fmt: skip
def test_a_bad_rate_is_refused_naming_the_field(text):
    with pytest.raises(ControlError) as refused:
        parse_rate(text)
    assert refused.value.field == "rate"


@pytest.mark.parametrize("n", [0, -1, 65, 2**70, True, "2", None, 1.5])
def test_a_pool_step_outside_1_to_64_is_refused(n):
    with pytest.raises(ControlError):
        pool_step(n)


@pytest.mark.parametrize(("high", "low"), [(0, 0), (2, 3), (257, 1), (4, -1), ("4", 1)])
def test_bad_autoscale_bounds_are_refused(high, low):
    with pytest.raises(ControlError):
        autoscale_bounds(high, low)


def test_autoscale_bounds_may_start_at_zero():
    assert autoscale_bounds(4, 0) == (4, 0)


@pytest.mark.django_db
def test_only_superusers_and_holders_of_the_permission_may_control():
    from django.contrib.auth.models import Permission

    staff = make_user("alice", staff=True)
    holder = make_user("bob", staff=False)
    holder.user_permissions.add(Permission.objects.get(codename="control_queues"))
    holder = type(holder).objects.get(pk=holder.pk)
    assert not may_control(staff)
    assert may_control(holder)
    assert may_control(make_superuser())
    assert not may_control(None)
    with pytest.raises(ControlDenied):
        check(Actor("web", staff))
    check(Actor.cli())  # the operator's shell


@pytest.mark.parametrize(
    ("rate", "workers", "total"),
    [("10/m", 3, "30/m"), ("5/s", 1, "5/s"), ("10/m", 0, "none: no worker consumes the queue"),
     (None, 4, "no limit")],
)  # fmt: skip
def test_the_effective_total_is_the_per_worker_limit_times_the_workers_consuming(
    rate, workers, total
):
    from apps.control.status import RateSummary

    summary = RateSummary("job", "celery", rate, stored=True, workers=workers, paused=False)
    assert summary.total == total
