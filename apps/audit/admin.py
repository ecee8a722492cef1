"""The one "Audit" list (admin → Audit), filterable by object type, user and entry point."""

from auditlog.admin import LogEntryAdmin
from auditlog.filters import ResourceTypeFilter
from django.contrib import admin

from .models import AuditEntry

# django-auditlog's admin registered its stock admin for our model (AUDITLOG_LOGENTRY_MODEL).
if admin.site.is_registered(AuditEntry):
    admin.site.unregister(AuditEntry)


@admin.register(AuditEntry)
class AuditEntryAdmin(LogEntryAdmin):
    list_display = ["created", "resource_url", "action", "msg_short", "who", "via"]
    list_filter = ["via", ResourceTypeFilter, ("actor", admin.RelatedOnlyFieldListFilter),
                   "action"]  # fmt: skip
    search_fields = ["object_repr", "actor_label", "actor__username"]
    readonly_fields = [*LogEntryAdmin.readonly_fields, "via", "actor_label"]
    fieldsets = [
        (None, {"fields": ["created", "user_url", "actor_label", "via", "resource_url"]}),
        ("Changes", {"fields": ["action", "msg"]}),
    ]

    @admin.display(description="Who")
    def who(self, entry: AuditEntry) -> str:
        return entry.who

    # django-auditlog's own columns, for an entry whose changes it can read: a row
    # holding another JSON value says so (AuditEntry.unreadable_changes) instead of a 500.
    @admin.display(description="Changes")
    def msg_short(self, entry: AuditEntry) -> str:
        return entry.unreadable_changes or super().msg_short(entry)

    @admin.display(description="Changes")
    def msg(self, entry: AuditEntry) -> str:
        return entry.unreadable_changes or super().msg(entry)
