"""Read-only lists of what is set and what was done: changes go through the actions
(dashboard, API, CLI), which tell the workers and record who did it. A job's rate
limit, and the actions that set it, are listed only to those who may run the job
(actions.runnable_job_names), as the API and the pages show them."""

from django.contrib import admin
from django.db.models import Q

from . import actions
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

    def get_queryset(self, request):
        rows = super().get_queryset(request)
        names = actions.runnable_job_names(request.user)
        if names is None:
            return rows
        return rows.filter(~Q(action__in=actions.JOB_ACTIONS) | Q(target__in=names))


@admin.register(QueuePause)
class QueuePauseAdmin(ReadOnly):
    list_display = ["queue", "paused_at", "paused_by"]


@admin.register(RateLimit)
class RateLimitAdmin(ReadOnly):
    list_display = ["job_name", "rate", "set_at", "set_by"]

    def get_queryset(self, request):
        rows = super().get_queryset(request)
        names = actions.runnable_job_names(request.user)
        return rows if names is None else rows.filter(job_name__in=names)
