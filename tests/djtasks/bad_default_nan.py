"""A Tasks API task whose default is not a finite number: importing it must fail
(tests/djtasks/test_bad_defaults.py)."""

import math

from django_tasks import task


@task()
def not_a_number(ratio: float = math.nan) -> float:
    return ratio
