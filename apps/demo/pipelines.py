"""The demo pipeline: a fan-out, its join, and a step after it (apps/pipelines)."""

from typing import Annotated

from apps.jobs.params import Range
from apps.pipelines.declare import Each, Result, Step, pipeline

from .tasks import add, square, total


@pipeline("Sum of squares", group="Demo")
def sum_of_squares(
    count: Annotated[int, Range(1, 1000)] = 10, pause: Annotated[float, Range(0, 60)] = 0
) -> list:
    """Square 0..count-1 at once (one step each), add the squares up, then double the sum."""
    return [
        Each("square", square, [{"x": i, "pause": pause} for i in range(count)]),
        Step("total", total, numbers=Result("square")),
        Step("double", add, x=Result("total"), y=Result("total")),
    ]
