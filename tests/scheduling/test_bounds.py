"""Bounds of a schedule's values (apps/scheduling/bounds.py) at every door: the admin
form (an error on the field, nothing saved) and `manage.py schedules add` (exit 2, one
line, nothing saved). The same rule marks rows written by hand as broken."""

import datetime as dt
import subprocess
import sys

import pytest
from django.conf import settings
from django_celery_beat.models import PeriodicTask

from apps.scheduling import bounds
from tests.scheduling.test_admin_form import post_invalid, staff  # noqa: F401
from tests.scheduling.test_cli import schedules

pytestmark = pytest.mark.django_db

# (every, period) the form and the CLI refuse: beyond 10 years, or below a second.
BAD_INTERVALS = [("3000000", "days"), (str(2**31 - 1), "days"), ("3651", "days"),
                 ("87601", "hours"), ("5256001", "minutes"), ("315360001", "seconds"),
                 ("0", "seconds"), ("-5", "minutes")]  # fmt: skip
BAD_DATES = ["9999-12-31 00:00", "2100-01-01 00:00", "1999-12-31 23:00", "0001-01-01 00:00"]
BAD_NAMES = ["two\nlines", "carriage\rreturn", "tab\tin name", "nul\x00", "bell\x07",
             "line\u2028separator", "zero\u200bwidth"]  # fmt: skip
BAD_GRACE = ["99999999999999", "604801", "-1"]


@pytest.mark.parametrize(("every", "period"), BAD_INTERVALS)
def test_the_form_refuses_an_interval_out_of_bounds_on_its_field(staff, every, period):  # noqa: F811
    errors = post_invalid(staff, kind="interval", every=every, period=period)
    assert "every" in errors


def test_the_form_accepts_ten_years_and_one_second():
    assert bounds.interval_error(3650, "days") is None
    assert bounds.interval_error(1, "seconds") is None
    assert bounds.interval_error(999999, "microseconds") is not None


@pytest.mark.parametrize("grace", BAD_GRACE)
def test_the_form_refuses_a_grace_period_out_of_bounds(staff, grace):  # noqa: F811
    assert "grace_seconds" in post_invalid(staff, grace_seconds=grace)


@pytest.mark.parametrize("field", ["start_time", "expires"])
@pytest.mark.parametrize("moment", BAD_DATES)
def test_the_form_refuses_a_far_date(staff, field, moment):  # noqa: F811
    day, time = moment.split()
    errors = post_invalid(staff, **{f"{field}_0": day, f"{field}_1": time})
    assert field in errors


@pytest.mark.parametrize("moment", ["9999-12-31T00:00", "2100-06-01T00:00"])
def test_the_form_refuses_a_clocked_time_too_far_ahead(staff, moment):  # noqa: F811
    errors = post_invalid(staff, kind="clocked", clocked_time=moment)
    assert "out of range" in str(errors["clocked_time"])


@pytest.mark.parametrize("name", BAD_NAMES)
def test_the_form_refuses_a_name_with_control_characters(staff, name):  # noqa: F811
    message = str(post_invalid(staff, name=name)["name"])
    assert "control characters" in message or "Null characters" in message


def test_the_form_refuses_expire_seconds_beyond_ten_years(staff):  # noqa: F811
    assert "expire_seconds" in post_invalid(staff, expire_seconds="315360001")


# The CLI -----------------------------------------------------------------------------


@pytest.mark.parametrize("every", ["3000000d", "2147483647d", "3651d", "87601h", "0s"])
def test_schedules_add_refuses_an_interval_out_of_bounds_with_exit_2(every):
    code, _, error = schedules("add", "far", "--job", "apps.demo.tasks.add",
                               "--every", every, "x=1", "y=2")  # fmt: skip
    assert code == 2
    assert error.startswith("every: ")
    assert "\n" not in error
    assert not PeriodicTask.objects.filter(name="far").exists()


@pytest.mark.parametrize("at", ["9999-12-31T00:00", "2100-01-02T00:00"])
def test_schedules_add_refuses_a_clocked_time_out_of_bounds(at):
    code, _, error = schedules("add", "far", "--job", "apps.demo.tasks.add", "--at", at,
                               "x=1", "y=2")  # fmt: skip
    assert (code, error.split(":")[0]) == (2, "clocked_time")
    assert not PeriodicTask.objects.filter(name="far").exists()


@pytest.mark.parametrize("name", BAD_NAMES[:4])
def test_schedules_add_refuses_a_name_with_control_characters(name):
    code, _, error = schedules("add", name, "--job", "apps.demo.tasks.add", "--every", "10m",
                               "x=1", "y=2")  # fmt: skip
    assert code == 2 and error.startswith("name: ")
    assert "\n" not in error
    assert not PeriodicTask.objects.filter(task="apps.demo.tasks.add").exists()


@pytest.mark.slow
def test_the_reported_command_exits_2_with_one_line_from_a_shell():
    """The exact command from issue 12, as a person types it."""
    result = subprocess.run(
        [sys.executable, "manage.py", "schedules", "add", "far", "--job",
         "apps.demo.tasks.add", "--every", "3000000d", "x=1", "y=2"],
        capture_output=True, text=True, cwd=settings.BASE_DIR, timeout=60,
        env={**__import__("os").environ, "DATABASE_URL": _database_url()},
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Every 3000000 days is out of range" in result.stderr


def _database_url() -> str:
    from tests.conftest import test_database_url

    return test_database_url()


def test_bounds_of_dates_are_documented_in_one_place():
    assert bounds.moment_error(dt.date(2000, 1, 1)) is None
    assert bounds.moment_error(dt.date(2099, 12, 31)) is None
    assert bounds.moment_error(dt.date(2100, 1, 1)) is not None
