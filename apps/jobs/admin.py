"""A read-only admin for runs: the web views and the API start and cancel them."""

from django.contrib import admin
from django.core.exceptions import PermissionDenied

from .models import Run


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = ("id", "job_name", "state", "source", "who", "queued_at", "finished_at")
    list_filter = ("state", "source", "queued_at")
    search_fields = ("=task_id",)  # exact: the unique index answers it at any size
    search_help_text = "Search by task id (exact)."
    list_select_related = ("requested_by",)
    show_full_result_count = False
    raw_id_fields = ("requested_by", "rerun_of")

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

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
