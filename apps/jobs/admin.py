"""A read-only admin for runs: the web views and the API start and cancel them."""

import json

from django.contrib import admin
from django.core.exceptions import PermissionDenied

from . import json_values
from .models import Run


def _json_text(value) -> str:
    return json.dumps(json_values.printable(value), ensure_ascii=False, default=str)


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = ("id", "job_name", "state", "source", "who", "queued_at", "finished_at")
    list_filter = ("state", "source", "queued_at")
    search_fields = ("=task_id",)  # exact: the unique index answers it at any size
    search_help_text = "Search by task id (exact)."
    list_select_related = ("requested_by",)
    show_full_result_count = False
    raw_id_fields = ("requested_by", "rerun_of")
    # The stored JSON shown through json_values.printable, in the fields' own places: a
    # row written before that rule may hold a lone surrogate, which Django's own display
    # of a JSONField cannot encode (the page was a 500).
    readonly_fields = ("shown_parameters", "shown_args")

    def get_queryset(self, request):
        """The runs this user may see, as on /runs/ and in the API."""
        return super().get_queryset(request).visible_to(request.user)

    def history_view(self, request, object_id, extra_context=None):
        # Django looks the run up first, and a run outside get_queryset would answer as
        # missing (302) rather than forbidden: without the view permission, 403 as before.
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        return super().history_view(request, object_id, extra_context)

    @admin.display(description="who", ordering="requested_by_label")
    def who(self, run: Run) -> str:
        return run.who

    def get_fields(self, request, obj=None):
        shown = {"parameters": "shown_parameters", "args": "shown_args"}
        stored = super().get_fields(request, obj)
        return [shown.get(name, name) for name in stored if name not in self.readonly_fields]

    @admin.display(description="parameters")
    def shown_parameters(self, run: Run) -> str:
        return _json_text(run.parameters)

    @admin.display(description="args")
    def shown_args(self, run: Run) -> str:
        return _json_text(run.args)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
