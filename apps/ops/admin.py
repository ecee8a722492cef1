"""The results admin: django-celery-results' own admin, plus runs, and fast at 1M rows.

Stock `TaskResultAdmin` counts the whole table for every page, ORs five substring
matches for a search, lists filter choices with SELECT DISTINCT over every row, and
drills dates down with a scan. This subclass keeps its fields and detail page, and:
estimates counts past 10,000 rows, searches an exact task id or a task name prefix,
lists filter choices by skipping through indexes, filters dates by fixed windows, and
fetches the runs and schedules of a page in two queries (apps.ops.results).
"""

from datetime import timedelta

from celery import states
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.views.main import ChangeList
from django.urls import NoReverseMatch
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.translation import ngettext
from django_celery_results.admin import TaskResultAdmin
from django_celery_results.models import TaskResult

from apps.jobs.catalog import get_job

from . import result_rows, results
from .models import Incident
from .paging import EstimatedCountPaginator
from .result_rows import reverser

UUID_LENGTH = 36
EMPTY = "-"
PAYLOADS = ("task_args", "task_kwargs", "result", "traceback", "meta")


class ValueFilter(admin.SimpleListFilter):
    """Choices are the column's distinct values, read by skipping through its index."""

    def lookups(self, request, model_admin):
        return [
            (v, self.label(v)) for v in results.distinct_values(TaskResult, self.parameter_name)
        ]

    def label(self, value: str) -> str:
        return value

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(**{self.parameter_name: self.value()})
        return queryset


class StatusFilter(ValueFilter):
    title, parameter_name = "state", "status"


class JobFilter(ValueFilter):
    title, parameter_name = "job", "task_name"

    def label(self, value: str) -> str:
        job = get_job(value)
        return f"{job.title} ({value})" if job else value


class ScheduleFilter(ValueFilter):
    title, parameter_name = "schedule", "periodic_task_name"


class WorkerFilter(ValueFilter):
    title, parameter_name = "worker", "worker"


class DoneWithinFilter(admin.SimpleListFilter):
    title, parameter_name = "done", "done_within"
    WINDOWS = {"1h": ("in the last hour", timedelta(hours=1)),
               "24h": ("in the last 24 hours", timedelta(hours=24)),
               "7d": ("in the last 7 days", timedelta(days=7))}  # fmt: skip

    def lookups(self, request, model_admin):
        return [(key, label) for key, (label, _) in self.WINDOWS.items()]

    def queryset(self, request, queryset):
        if self.value() in self.WINDOWS:
            since = timezone.now() - self.WINDOWS[self.value()][1]
            return queryset.filter(date_done__gte=since)
        return queryset


class ResultChangeList(ChangeList):
    def get_results(self, request) -> None:
        # The list shows none of the stored payloads, which can be kilobytes a row; the
        # detail page and the actions (which get their own queryset) still read them.
        self.queryset = self.queryset.defer(*PAYLOADS)
        super().get_results(request)
        results.attach_runs(self.result_list)
        _attach_links(self.result_list)

    def result_table(self) -> dict:
        return result_rows.result_table(self)


admin.site.unregister(TaskResult)


@admin.register(TaskResult)
class ResultAdmin(TaskResultAdmin):
    list_display = ("task_id", "job", "status", "started_by", "wait", "run_time",
                    "done", "worker", "links")  # fmt: skip
    list_filter = (StatusFilter, JobFilter, ScheduleFilter, WorkerFilter, DoneWithinFilter)
    date_hierarchy = None
    change_list_template = "ops/admin/results_change_list.html"
    search_help_text = "An exact task id, or the start of a task name (apps.demo.tasks.add)."
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    paginator = EstimatedCountPaginator
    actions = ["retry_failed", "terminate_running"]

    def get_changelist(self, request, **kwargs):
        return ResultChangeList

    def get_queryset(self, request):
        """Only the results whose runs this user may see: the list, the detail page and
        the actions (superusers and `view_all_runs` see every row, with no extra filter)."""
        return results.visible_to(super().get_queryset(request), request.user)

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        if len(term) == UUID_LENGTH and term.count("-") == 4:
            return queryset.filter(task_id=term), False
        return queryset.filter(task_name__startswith=term), False

    # Columns --------------------------------------------------------------------------

    @admin.display(description=mark_safe('<input type="checkbox" id="action-toggle">'))
    def action_checkbox(self, result: TaskResult) -> str:
        """The stock checkbox, without rendering a form widget template per row."""
        return format_html(
            '<input type="checkbox" name="{}" value="{}" class="action-select" '
            'aria-label="Select this object for an action - {}">',
            helpers.ACTION_CHECKBOX_NAME, result.pk, result,
        )  # fmt: skip

    @admin.display(description="completed", ordering="date_done")
    def done(self, result: TaskResult) -> str:
        return f"{timezone.localtime(result.date_done):%Y-%m-%d %H:%M:%S}"

    @admin.display(description="job", ordering="task_name")
    def job(self, result: TaskResult) -> str:
        job = get_job(result.task_name or "")
        if job is None:
            return result.task_name or EMPTY
        return format_html('{}<br><span class="quiet">{}</span>', job.title, result.task_name)

    @admin.display(description="started by")
    def started_by(self, result: TaskResult) -> str:
        run = getattr(result, "run", None)
        if run is None:
            return EMPTY
        return format_html('{} <span class="quiet">({})</span>', run.who, run.source)

    @admin.display(description="wait")
    def wait(self, result: TaskResult) -> str:
        run = getattr(result, "run", None)
        return _duration(run.wait_time if run else None)

    @admin.display(description="run time")
    def run_time(self, result: TaskResult) -> str:
        return _duration(results.run_time(result))

    @admin.display(description="links")
    def links(self, result: TaskResult) -> str:
        parts = []
        if getattr(result, "run_url", None):
            parts.append(format_html('<a href="{}">run</a>', result.run_url))
        if getattr(result, "schedule_url", None):
            parts.append(format_html('<a href="{}">schedule</a>', result.schedule_url))
        return format_html(" · ".join(["{}"] * len(parts)), *parts) if parts else EMPTY

    # Actions --------------------------------------------------------------------------

    @admin.action(description="Retry the selected failed runs (same arguments)")
    def retry_failed(self, request, queryset) -> None:
        started, refused = 0, []
        for result in queryset.filter(status=states.FAILURE):
            try:
                results.retry(result, request.user)
                started += 1
            except results.NotRetried as why:
                refused.append(f"{result.task_id}: {why}")
        self.message_user(request, ngettext("Started %d run again.", "Started %d runs again.",
                                            started) % started)  # fmt: skip
        skipped = queryset.count() - started - len(refused)
        if skipped:
            self.message_user(request, ngettext(
                "Skipped %d that did not fail.", "Skipped %d that did not fail.", skipped
            ) % skipped, messages.WARNING)  # fmt: skip
        for line in refused[:10]:
            self.message_user(request, f"Not retried: {line}", messages.ERROR)

    @admin.action(description="Terminate the selected running tasks")
    def terminate_running(self, request, queryset) -> None:
        stopped, refused = 0, []
        for result in queryset.filter(status__in=results.RUNNING):
            try:
                stopped += results.terminate(result, request.user)
            except results.NotTerminated as why:
                refused.append(f"{result.task_id}: {why}")
        self.message_user(
            request,
            ngettext("Asked %d task to terminate.", "Asked %d tasks to terminate.", stopped)
            % stopped,
        )
        skipped = queryset.count() - stopped - len(refused)
        if skipped:
            self.message_user(request, f"Skipped {skipped}: not running, not yours to stop, "
                                       "or the broker is down.",
                              messages.WARNING)  # fmt: skip
        if refused:
            self.message_user(request, f"Skipped {len(refused)} that may not be stopped now:",
                              messages.WARNING)  # fmt: skip
        for line in refused[:10]:
            self.message_user(request, f"Not terminated: {line}", messages.WARNING)


def _attach_links(page: list[TaskResult]) -> None:
    """Give each result `.run_url` and `.schedule_url` (or None): one reverse() for the
    page instead of up to two per row (a third of the list's Python time at 100 rows)."""
    run_url, schedule_url = _run_url(), reverser("admin:django_celery_beat_periodictask_change")
    for result in page:
        result.run_url = run_url(result.run.pk) if result.run else None
        result.schedule_url = schedule_url(result.schedule_pk) if result.schedule_pk else None


def _run_url():
    """Run.get_absolute_url (the "jobs:run" page), or the run's admin page without it."""
    try:
        return reverser("jobs:run")
    except NoReverseMatch:  # the run pages are not installed
        return reverser("admin:jobs_run_change")


def _duration(value: timedelta | None) -> str:
    if value is None:
        return EMPTY
    seconds = value.total_seconds()
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min"


@admin.register(Incident)
class IncidentAdmin(admin.ModelAdmin):
    list_display = ("title", "kind", "opened_at", "resolved_at", "count", "last_notified_at")
    list_filter = ("kind", ("resolved_at", admin.EmptyFieldListFilter))
    search_fields = ("=key",)
    readonly_fields = [f.name for f in Incident._meta.fields]

    def get_queryset(self, request):
        """The incidents this user may see, as on the dashboard."""
        return super().get_queryset(request).visible_to(request.user)

    def has_add_permission(self, request) -> bool:
        return False
