"""A Tasks API task whose default breaks its own bounds: importing it must fail
(tests/djtasks/test_bad_defaults.py)."""

from typing import Annotated

from django_tasks import task

from apps.jobs.params import Range


@task()
def outside(ratio: Annotated[float, Range(0, 1)] = 5.0) -> float:
    return ratio
