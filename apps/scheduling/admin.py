"""django-celery-beat's PeriodicTask admin, made safe and clear.

A subclass of their admin (their filters, search and toggle action stay): a catalog job
gets its typed parameter form instead of raw JSON, the schedule is edited in place with
a live description and next-run preview, and the change list and page show what the
schedule actually did (from the run records). Every action calls a `Schedule` method.
"""

from __future__ import annotations

import datetime as dt

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.actions import delete_selected
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST
from django_celery_beat.admin import (
    ClockedScheduleAdmin,
    CrontabScheduleAdmin,
    IntervalScheduleAdmin,
    PeriodicTaskAdmin,
    SolarScheduleAdmin,
)
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)

from apps.audit.history import history_response
from apps.jobs.catalog import ParameterError, get_job
from apps.jobs.models import Source
from apps.jobs.permissions import may_run

from . import bounds, preview
from .forms import CRON_FIELDS, ScheduleForm, ScheduleTaskForm
from .models import Schedule, ScheduleOptions
from .saving import ScheduleError, kind_of, row_errors, task_errors
from .views import form_preview

RECENT_RUNS = 20


admin.site.unregister(PeriodicTask)


@admin.register(PeriodicTask)
class ScheduleAdmin(PeriodicTaskAdmin):
    form = ScheduleTaskForm
    change_form_template = "scheduling/admin/change_form.html"
    list_display = ("name", "enabled", "job", "schedule", "next_run", "last_run",
                    "last_success", "runs_last_day")  # fmt: skip
    list_display_links = ("name",)
    list_filter = ("enabled", "one_off", "task", "last_run_at")
    date_hierarchy = None
    actions = ("delete_selected", "run_now", "enable", "disable", "duplicate", "toggle_tasks")
    fieldsets = (
        (None, {"fields": ("name", "regtask", "task", "enabled", "description")}),
        ("Schedule", {
            "fields": ("kind", ("every", "period"), ("minute", "hour", "day_of_month",
                       "month_of_year", "day_of_week"), "timezone", ("event", "latitude",
                       "longitude"), "clocked_time", "start_time", "one_off", "last_run_at"),
        }),
        ("Arguments (JSON, for tasks outside the catalog)", {
            "fields": ("args", "kwargs"), "classes": ("collapse", "switchyard-raw-arguments"),
        }),
        ("Safety and alerts", {"fields": ("overlap", "grace_seconds", "alert_recipients")}),
        ("Execution options", {
            "fields": ("expires", "expire_seconds", "queue", "exchange", "routing_key",
                       "priority", "headers"),
            "classes": ("collapse",),
        }),
    )  # fmt: skip
    readonly_fields = ("last_run_at",)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        """Schedules (the proxy, with its methods), their options (bounds read them) and
        run summary; ordered as PeriodicTaskAdmin orders them."""
        tasks = Schedule.objects.with_schedules().with_run_summary(timezone.now())
        ordering = self.get_ordering(request)
        return tasks.order_by(*ordering) if ordering else tasks

    # Change list columns ----------------------------------------------------------------

    @admin.display(description="job", ordering="task")
    def job(self, task: PeriodicTask) -> str:
        job = get_job(task.task)
        return job.title if job else task.task

    @admin.display(description="schedule")
    def schedule(self, task: PeriodicTask) -> str:
        return preview.describe(task)

    @admin.display(description="next run")
    def next_run(self, task: PeriodicTask) -> str:
        problem = preview.schedule_problem(task, timezone.now())
        if problem:  # beat skips it: say so where people look
            return format_html('<strong class="switchyard-broken" title="{}">broken</strong>',
                               problem)  # fmt: skip
        runs = preview.safe_upcoming_runs(task, timezone.now(), 1)
        return short_time(runs[0]) if runs else "-"

    @admin.display(description="last run", ordering="last_run_queued_at")
    def last_run(self, task: PeriodicTask) -> str:
        if not task.last_run_pk:
            return "-"
        url = reverse("jobs:run", args=[task.last_run_pk])
        when = short_time(task.last_run_queued_at)
        return format_html('<a href="{}">{}</a> ({})', url, when, task.last_run_state)

    @admin.display(description="last success", ordering="last_success_at")
    def last_success(self, task: PeriodicTask) -> str:
        return short_time(task.last_success_at) if task.last_success_at else "-"

    @admin.display(description="runs in 24 h", ordering="runs_last_day")
    def runs_last_day(self, task: PeriodicTask) -> int:
        return task.runs_last_day

    # Change page ------------------------------------------------------------------------

    def get_form(self, request, obj=None, change=False, **kwargs):
        """The form knows who saves: it offers, and accepts, only the jobs they may run."""
        form = super().get_form(request, obj, change, **kwargs)
        return type(form.__name__, (form,), {"user": request.user})

    def save_model(self, request, obj, form, change) -> None:
        form.save_all()

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        extra_context = extra_context or {}
        if object_id:
            task = self.get_object(request, object_id)
            if task is not None:
                extra_context["recent_runs"] = task.recent_runs(request.user, RECENT_RUNS)
        return super().changeform_view(request, object_id, form_url, extra_context)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["schedule_preview"] = form_preview(context["adminform"].form, obj)
        context["preview_url"] = reverse("scheduling:preview")
        context["parameters_url"] = reverse("scheduling:parameters")
        return super().render_change_form(request, context, add, change, form_url, obj)

    def history_view(self, request, object_id, extra_context=None):
        """The change page's "History": the audit log of the schedule and its options
        (who changed what, from where, field by field)."""
        task = self.get_object(request, unquote(object_id))
        if task is None or not self.has_view_or_change_permission(request, task):
            raise PermissionDenied
        options = ScheduleOptions.objects.filter(periodic_task=task).first()
        return history_response(self, request, task, *([options] if options else []))

    def get_urls(self):
        run_now = self.admin_site.admin_view(require_POST(self.run_now_view))
        return [
            path("<path:object_id>/run-now/", run_now, name=self.url_name("run_now")),
            *super().get_urls(),
        ]

    def run_now_view(self, request: HttpRequest, object_id: str):
        task = get_object_or_404(Schedule, pk=object_id)
        if not self.has_change_permission(request, task):
            return HttpResponseRedirect(reverse("admin:index"))
        self.run_now(request, Schedule.objects.filter(pk=task.pk))
        return HttpResponseRedirect(reverse(f"admin:{self.url_name('change')}", args=[task.pk]))

    def url_name(self, view: str) -> str:
        return f"{self.opts.app_label}_{self.opts.model_name}_{view}"

    # Actions ----------------------------------------------------------------------------

    @admin.action(description="Run selected schedules now", permissions=["change"])
    def run_now(self, request: HttpRequest, queryset: QuerySet[PeriodicTask]) -> None:
        started = 0
        for task in self.runnable(request, queryset):
            try:
                task.run_now(request.user, source=Source.ADMIN)
            except ParameterError as error:
                self.message_user(request, f"{task.name}: {error.one_line()}", messages.ERROR)
                continue
            started += 1
        if started:
            self.message_user(request, ngettext("%(count)d run started.",
                                               "%(count)d runs started.", started)
                              % {"count": started})  # fmt: skip

    @admin.action(description="Enable selected schedules", permissions=["change"])
    def enable(self, request: HttpRequest, queryset: QuerySet[PeriodicTask]) -> None:
        count = self.runnable_only(request, queryset).set_enabled(True)
        self.message_user(request, ngettext("%(count)d schedule enabled.",
                                           "%(count)d schedules enabled.", count)
                          % {"count": count})  # fmt: skip

    @admin.action(description="Disable selected schedules", permissions=["change"])
    def disable(self, request: HttpRequest, queryset: QuerySet[PeriodicTask]) -> None:
        count = self.runnable_only(request, queryset).set_enabled(False)
        self.message_user(request, ngettext("%(count)d schedule disabled.",
                                           "%(count)d schedules disabled.", count)
                          % {"count": count})  # fmt: skip

    @admin.action(description="Toggle activity of selected schedules", permissions=["change"])
    def toggle_tasks(self, request: HttpRequest, queryset: QuerySet[PeriodicTask]) -> None:
        """django-celery-beat's toggle, for the schedules of jobs the user may run."""
        tasks = self.runnable(request, queryset)
        count = sum(
            Schedule.objects.filter(pk__in=pks).set_enabled(enabled)
            for enabled, pks in (
                (False, [t.pk for t in tasks if t.enabled]),
                (True, [t.pk for t in tasks if not t.enabled]),
            )
        )
        self.message_user(request, ngettext("%(count)d schedule toggled.",
                                           "%(count)d schedules toggled.", count)
                          % {"count": count})  # fmt: skip

    @admin.action(description=delete_selected.short_description, permissions=["delete"])
    def delete_selected(self, request: HttpRequest, queryset: QuerySet[PeriodicTask]):
        """Django's own delete (its confirmation page, then the delete), of the selected
        schedules whose job the user may run."""
        allowed = [task.pk for task in self.runnable(request, queryset)]
        if allowed:
            return delete_selected(self, request, queryset.filter(pk__in=allowed))
        return None

    @admin.action(description="Duplicate selected schedules (disabled)", permissions=["add"])
    def duplicate(self, request: HttpRequest, queryset: QuerySet[PeriodicTask]) -> None:
        """A disabled copy of each, if saving would take it (saving.task_errors: a job
        that cannot be scheduled, parameters the job now refuses, ...); an error message
        names each of the others, and nothing of it is written."""
        copies = []
        for task in self.runnable(request, queryset):
            try:
                copies.append(_checked_copy(task, request.user))
            except ScheduleError as error:
                self.message_user(request, f"{bounds.one_line(task.name)}: not duplicated: "
                                           f"{error.one_line()}", messages.ERROR)  # fmt: skip
        self.message_user(request, ngettext("%(count)d schedule duplicated (disabled).",
                                           "%(count)d schedules duplicated (disabled).",
                                           len(copies))
                          % {"count": len(copies)})  # fmt: skip

    # Who may act on which schedule ----------------------------------------------------

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        """Deleting a schedule (its delete page, and the schedules a schedule row's
        delete would take with it) needs the right to run its job too."""
        if obj is not None and not may_run(request.user, obj.task):
            return False
        return super().has_delete_permission(request, obj)

    def runnable(self, request: HttpRequest, queryset: QuerySet[PeriodicTask]) -> list:
        """The selected schedules whose job the user may run (apps.jobs.permissions);
        an error message names each of the others, which are left as they were."""
        allowed = []
        for task in queryset:
            if may_run(request.user, task.task):
                allowed.append(task)
            else:
                self.message_user(request, f"{task.name}: you may not run {job_title(task)}.",
                                  messages.ERROR)  # fmt: skip
        return allowed

    def runnable_only(self, request: HttpRequest, queryset: QuerySet[PeriodicTask]) -> QuerySet:
        pks = [task.pk for task in self.runnable(request, queryset)]
        return Schedule.objects.filter(pk__in=pks)


def job_title(task: PeriodicTask) -> str:
    job = get_job(task.task)
    return job.title if job else task.task


def short_time(moment: dt.datetime) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M %Z")


@transaction.atomic
def _checked_copy(task: Schedule, user) -> Schedule:
    """Schedule.duplicate, then the copy checked by saving's rule on what a schedule
    runs (the user as the saver): ScheduleError rolls the copy back."""
    copy = task.duplicate()
    if errors := task_errors(copy, user):
        raise ScheduleError(errors)
    return copy


# django-celery-beat's pages for the schedule rows themselves --------------------------
# A row is shared by every periodic task that uses it: editing it here reschedules them
# all, so it gets the periodic task form's rules (ScheduleForm, saving.row_errors), and
# only a user who may run all of their jobs may change it. Deleting it deletes them: the
# admin's own check asks ScheduleAdmin.has_delete_permission of each.


class SharedRowForm(forms.ModelForm):
    """A schedule row, refused to a user who may not run the job of every periodic task
    (enabled or not) that uses it, as the periodic task form would refuse each of them."""

    user = None  # who saves: set by the row's admin (SharedRowAdmin.get_form)

    def clean(self):
        data = super().clean()
        blocking = self.blocking_tasks()
        if blocking:
            names = ", ".join(f"{task.name} ({job_title(task)})" for task in blocking)
            row = f"This {self.instance._meta.verbose_name} ({self.instance})"
            self.add_error(None, f"{row} is used by schedules of jobs you may not run, so "
                                 f"you may not change it: {names}.")  # fmt: skip
        return data

    def blocking_tasks(self) -> list[PeriodicTask]:
        if self.instance.pk is None or self.user is None:
            return []  # a new row: no periodic task uses it yet
        using = PeriodicTask.objects.filter(**{kind_of(self.instance): self.instance.pk})
        return [task for task in using.order_by("name") if not may_run(self.user, task.task)]


class ScheduleRowForm(SharedRowForm):
    """A schedule row, refused with the message on its field where ScheduleForm (the
    periodic task form's schedule part) would refuse the same values."""

    kind = ""

    def clean(self):
        data = super().clean()
        if not self.errors:
            self.add_schedule_errors(data)
        return data

    def add_schedule_errors(self, data: dict) -> None:
        names = (*CRON_FIELDS, "every", "period")
        values = {name: data[name] for name in names if data.get(name) is not None}
        values["timezone"] = str(data.get("timezone", ""))
        schedule = ScheduleForm({"kind": self.kind, **values})
        for name, errors in schedule.errors.items():
            self.add_error(name if name in self.fields else None, errors)


class IntervalRowForm(ScheduleRowForm):
    kind = "interval"


class CrontabRowForm(ScheduleRowForm):
    kind = "crontab"


class CheckedRowForm(SharedRowForm):
    """A solar or clocked row, checked by saving.row_errors as save_schedule checks the
    periodic task form's row: a clocked time must be to come, unless it is the one stored
    (as the periodic task form keeps it)."""

    def clean(self):
        data = super().clean()
        if not self.errors:
            model = type(self.instance)
            row = model(**{name: data.get(name) for name in self.fields})
            stored = getattr(self.instance, "clocked_time", None) if self.instance.pk else None
            for name, errors in row_errors(row, stored).items():
                self.add_error(name if name in self.fields else None, errors)
        return data


class ClockedRowForm(CheckedRowForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if isinstance(self.initial.get("clocked_time"), bounds.Unreadable):
            del self.initial["clocked_time"]  # stored as no date at all: asked anew


class SharedRowAdmin:
    """The row's form knows who saves (SharedRowForm.user)."""

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        return type(form.__name__, (form,), {"user": request.user})


for model, stock_admin, row_form in (
    (IntervalSchedule, IntervalScheduleAdmin, IntervalRowForm),
    (CrontabSchedule, CrontabScheduleAdmin, CrontabRowForm),
    (SolarSchedule, SolarScheduleAdmin, CheckedRowForm),
    (ClockedSchedule, ClockedScheduleAdmin, ClockedRowForm),
):
    admin.site.unregister(model)
    admin_class = type(stock_admin.__name__, (SharedRowAdmin, stock_admin), {"form": row_form})
    admin.site.register(model, admin_class)
