"""The audit log's one table: django-auditlog's log entry, plus where the change came from.

django-auditlog writes a row for every create, update and delete of a registered model
(apps/audit/registration.py) with a field-by-field diff; `via` and `actor_label` are
filled from the context an entry point opens (apps/audit/context.py).
"""

from auditlog.models import AbstractLogEntry
from django.db import models


class Via(models.TextChoices):
    ADMIN = "admin"
    WEB = "web"
    API = "api"
    CLI = "cli"
    SYSTEM = "system"  # no entry point said: beat, a worker, a migration, a shell


JSON_KINDS = {str: "a string", list: "an array", int: "a number", float: "a number",
              bool: "true or false"}  # fmt: skip


class AuditEntry(AbstractLogEntry):
    via = models.CharField(max_length=16, choices=Via.choices, default=Via.SYSTEM, db_index=True)
    # Who, where no user account acted: the OS user of a manage.py command.
    actor_label = models.CharField(max_length=200, blank=True)

    class Meta(AbstractLogEntry.Meta):
        verbose_name = "audit entry"
        verbose_name_plural = "audit"
        indexes = [models.Index(fields=["content_type", "object_pk"], name="audit_object")]

    @property
    def unreadable_changes(self) -> str:
        """Why the stored changes cannot be shown, or "": django-auditlog reads them as
        an object of {field: [old, new]}, and a row written by hand (or by another tool)
        may hold another JSON value, which the Audit list and a History page show so."""
        changes = self.changes_dict
        if isinstance(changes, dict):
            return ""
        kind = JSON_KINDS.get(type(changes), type(changes).__name__)
        return f"(changes not readable: {kind}, not a JSON object)"

    @property
    def who(self) -> str:
        if self.actor_id:
            return self.actor.get_username()
        return self.actor_label or "-"


class ControlAction(AuditEntry):
    """The object type of a control action whose target is not a row (a queue, a worker)."""

    class Meta:
        proxy = True
        verbose_name = "control action"
