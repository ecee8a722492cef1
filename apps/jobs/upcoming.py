"""When each job next runs, for the catalog page (/jobs/).

apps.jobs knows nothing of schedules (apps.scheduling sits above it): the app that plans
runs hands its answer in here from its AppConfig.ready(); apps.scheduling gives beat's
(apps/scheduling/upcoming.py). With none given, no job shows a next run.
"""

import datetime as dt
from collections.abc import Callable

NextRuns = Callable[[list[str], dt.datetime], dict[str, dt.datetime]]

_source: NextRuns | None = None


def provide(source: NextRuns) -> None:
    """Say where next runs come from: `source(job_names, now)` -> {job name: when}."""
    global _source
    _source = source


def next_runs(job_names: list[str], now: dt.datetime) -> dict[str, dt.datetime]:
    return _source(job_names, now) if _source and job_names else {}
