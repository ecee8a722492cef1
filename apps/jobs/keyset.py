"""Keyset paging of runs, newest first, without COUNT(*): the one paging of `/runs/`
(ordered by queued_at, id; cursors in the page's links) and the API's `GET /api/runs`
(ordered by id; `?before=<id>`). Each entry point only encodes its cursor.

One row more than the page is fetched, to know whether another page follows. Unlike the
results admin's paginator (apps/ops/paging.py: page numbers over OFFSET, for a table
that is searched and sorted by any column), a page here costs the same at any depth.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import Q, QuerySet

Key = tuple[Any, ...]


@dataclass
class Page:
    items: list
    newer: Key | None  # key of the first item, when newer items exist
    older: Key | None  # key of the last item, when older items exist


def keyset_page(
    rows: QuerySet, by: Sequence[str], size: int, *, after: Key | None = None,
    before: Key | None = None,
) -> Page:  # fmt: skip
    """A page of `rows` ordered by the fields `by`, descending (newest first): the page
    after (older than) the key `after`, or before (newer than) the key `before`."""
    if before is not None:
        return _newer_page(rows, by, size, before)
    return _older_page(rows, by, size, after)


def _older_page(rows: QuerySet, by: Sequence[str], size: int, key: Key | None) -> Page:
    rows = rows.order_by(*(f"-{name}" for name in by))
    if key is not None:
        rows = beyond(rows, by, key, "lt")
    fetched = list(rows[: size + 1])
    shown = fetched[:size]
    older = key_of(shown[-1], by) if len(fetched) > size else None
    newer = key_of(shown[0], by) if key is not None and shown else None
    return Page(shown, newer, older)


def _newer_page(rows: QuerySet, by: Sequence[str], size: int, key: Key) -> Page:
    fetched = list(beyond(rows, by, key, "gt").order_by(*by)[: size + 1])
    shown = fetched[:size][::-1]
    newer = key_of(shown[0], by) if len(fetched) > size else None
    older = key_of(shown[-1], by) if shown else None
    return Page(shown, newer, older)


def beyond(rows: QuerySet, by: Sequence[str], key: Key, op: str) -> QuerySet:
    """Rows whose (by...) tuple is less than (op "lt") or greater than ("gt") `key`.
    The first field's `<=` / `>=` first, so that an index range does the work."""
    first = rows.filter(**{f"{by[0]}__{op}e": key[0]})
    after = Q()
    for i, name in enumerate(by):
        after |= Q(**dict(zip(by[:i], key[:i], strict=True)), **{f"{name}__{op}": key[i]})
    return first.filter(after)


def key_of(row, by: Sequence[str]) -> Key:
    return tuple(getattr(row, name) for name in by)
