"""A plan is checked before anything is recorded or sent."""

import pytest

from apps.demo.tasks import add
from apps.pipelines.declare import Each, PlanError, Result, Step, check_plan, plan_stages

pytestmark = pytest.mark.once


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        ([Step("a", "no.such.job")], "no catalog job 'no.such.job'"),
        ([Step("a", add, x=1, y=2), Step("a", add, x=1, y=2)], "not valid or not unique"),
        ([Step("a\x00", add, x=1, y=2)], "not valid or not unique"),
        ([Step("a\n", add, x=1, y=2)], "not valid or not unique"),
        ([Step("a", add, x=Result("b"), y=1), Step("b", add, x=1, y=2)], "no earlier step 'b'"),
        ([Each("many", add, [{"x": i, "y": 0} for i in range(5001)])], "at most 5000"),
        ([Each("none", add, [])], "has no steps"),
    ],
)
def test_a_plan_that_cannot_run_is_refused_naming_why(plan, message):
    with pytest.raises(PlanError, match=message):
        check_plan(plan_stages(plan))
