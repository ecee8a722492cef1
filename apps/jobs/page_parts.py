"""Parts that apps above apps.jobs add to its pages, so the pages need not know them.

A place is a name the jobs templates render with `{% page_parts "<place>" %}`:
- "runs": above the /runs/ table (the context has `filters`, the RunFilterForm);
- "run": in a run's live part (the context has `run`);
- "job": below a job's form on /jobs/<name>/ (the context has `job`).
An app adds a part from its AppConfig.ready() with `add(place, part)`, where
`part(context)` returns rendered HTML (apps.reports adds the CSV export button and an
export run's download link).
"""

from collections.abc import Callable

from django.template import Context
from django.utils.safestring import SafeString, mark_safe

Part = Callable[[Context], str]

_places: dict[str, list[Part]] = {}


def add(place: str, part: Part) -> None:
    parts = _places.setdefault(place, [])
    if part not in parts:
        parts.append(part)


def render(place: str, context: Context) -> SafeString:
    # Each part returns a rendered (auto-escaped) template.
    return mark_safe("".join(part(context) for part in _places.get(place, ())))  # noqa: S308
