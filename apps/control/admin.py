"""Read-only lists of what is set and what was done: changes go through the actions
(dashboard, API, CLI), which tell the workers and record who did it."""

from django.contrib import admin

from .models import ControlAction, QueuePause, RateLimit


class ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ControlAction)
class ControlActionAdmin(ReadOnly):
    list_display = ["at", "action", "target", "label", "via", "detail"]
    list_filter = ["action", "via"]
    search_fields = ["target", "label"]
    show_full_result_count = False


@admin.register(QueuePause)
class QueuePauseAdmin(ReadOnly):
    list_display = ["queue", "paused_at", "paused_by"]


@admin.register(RateLimit)
class RateLimitAdmin(ReadOnly):
    list_display = ["job_name", "rate", "set_at", "set_by"]
