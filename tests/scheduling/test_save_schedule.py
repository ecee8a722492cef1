"""save_schedule: the one way a new schedule is checked and written (CLI and admin rules)."""

import pytest
from django_celery_beat.models import PeriodicTask

from apps.scheduling.forms import ScheduleError, save_schedule
from apps.scheduling.models import ScheduleOptions
from tests.helpers import make_user

pytestmark = pytest.mark.django_db

EVERY_TEN_MINUTES = {"kind": "interval", "every": 10, "period": "minutes"}


def test_it_saves_the_schedule_its_parameters_and_options_at_once():
    task = save_schedule(name="tidy", task="apps.demo.tasks.add", schedule=EVERY_TEN_MINUTES,
                         params={"x": "2", "y": "3"}, options={"grace_seconds": 60})  # fmt: skip
    task.refresh_from_db()
    assert (task.interval.every, task.interval.period, task.kwargs) == (
        10, "minutes", '{"x": 2, "y": 3}',
    )  # fmt: skip
    assert (task.options.grace_seconds, task.options.overlap) == (60, "allow")


@pytest.mark.parametrize(("change", "field"), [
    ({"schedule": {**EVERY_TEN_MINUTES, "every": 3000000, "period": "days"}}, "every"),
    ({"options": {"grace_seconds": 99999999999999}}, "grace_seconds"),
    ({"options": {"alert_recipients": "ops@example.com\r\nBcc: x@y.z"}}, "alert_recipients"),
    ({"params": {"x": "two", "y": "3"}}, "param-x"),
    ({"name": "two\nlines"}, "name"),
])  # fmt: skip
def test_bad_input_names_the_field_and_writes_nothing(change, field):
    values = {"name": "tidy", "task": "apps.demo.tasks.add", "schedule": EVERY_TEN_MINUTES,
              "params": {"x": "1", "y": "2"}, **change}  # fmt: skip
    with pytest.raises(ScheduleError) as refused:
        save_schedule(**values)
    assert list(refused.value.errors) == [field]
    assert not PeriodicTask.objects.filter(name__startswith="t").exists()
    assert not ScheduleOptions.objects.filter(periodic_task__name__startswith="t").exists()


def test_a_user_may_schedule_only_a_job_they_may_run():
    alice = make_user("alice", jobs=("apps.demo.tasks.add",))
    save_schedule(name="mine", task="apps.demo.tasks.add", schedule=EVERY_TEN_MINUTES,
                  params={"x": "1", "y": "2"}, user=alice)  # fmt: skip
    with pytest.raises(ScheduleError) as refused:
        save_schedule(name="theirs", task="apps.maintenance.tasks.run_command", user=alice,
                      schedule=EVERY_TEN_MINUTES, params={"command": "check"})  # fmt: skip
    assert "may not run" in refused.value.one_line()
    assert list(PeriodicTask.objects.filter(name__in=["mine", "theirs"]).values_list(
        "name", flat=True)) == ["mine"]  # fmt: skip
