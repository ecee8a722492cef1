"""Audit entries written by hand: actions that are not a row's save (pause a queue, shrink
a pool) and bulk updates that send no signals (a queryset's `.update()`)."""

from collections.abc import Iterable, Mapping
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import models

from .models import AuditEntry, ControlAction, Via


def record(
    action: str,
    target: Any,
    *,
    user=None,
    via: str = Via.SYSTEM,
    changes: Mapping[str, Any] | None = None,
    label: str = "",
) -> AuditEntry:
    """One control action (`action`, e.g. "pause_queue") on `target` (a row, or a name
    such as a queue's or a worker's) by `user` (or `label`) from `via`. `changes` maps
    a field to [old, new] (or to one value)."""
    if isinstance(target, models.Model):
        content_type, pk = ContentType.objects.get_for_model(target), str(target.pk)
    else:
        content_type = ContentType.objects.get_for_model(ControlAction, for_concrete_model=False)
        pk = str(target)
    return AuditEntry.objects.create(
        content_type=content_type, object_pk=pk[:255], object_repr=f"{action}: {target}"[:1000],
        action=AuditEntry.Action.UPDATE, changes=as_diff(changes or {}),
        actor=user if getattr(user, "is_authenticated", False) else None,
        actor_label=label[:200], via=via, additional_data={"action": action},
    )  # fmt: skip


def as_diff(changes: Mapping[str, Any]) -> dict[str, list[str]]:
    """django-auditlog's shape: each field to [old, new] as text."""
    diff = {}
    for field, value in changes.items():
        old, new = value if isinstance(value, list | tuple) and len(value) == 2 else (None, value)
        diff[str(field)] = [str(old), str(new)]
    return diff


def record_updates(rows: Iterable[models.Model], changes: Mapping[str, Any]) -> int:
    """Entries for rows changed by a queryset's `.update()` (no save, no signals)."""
    diff = as_diff(changes)
    update = AuditEntry.Action.UPDATE
    return len([AuditEntry.objects.log_create(row, action=update, changes=diff) for row in rows])
