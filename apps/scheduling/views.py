"""Fragments for the periodic task admin form: the live preview and a job's parameters.

Staff only. The admin's change form fetches them while it is edited
(static/scheduling/schedule_form.js); the admin renders the same templates on load.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET
from django_celery_beat.models import PeriodicTask

from apps.jobs.catalog import get_job
from apps.jobs.permissions import may_run

from . import preview
from .forms import PARAM_PREFIX, ScheduleForm, form_data_for_preview


@require_GET
@staff_member_required
def schedule_preview(request: HttpRequest) -> HttpResponse:
    context = {"schedule_preview": preview_from_data(request.GET, timezone.now())}
    return render(request, "scheduling/preview.html", context)


@require_GET
@staff_member_required
def parameters(request: HttpRequest) -> HttpResponse:
    job = get_job(request.GET.get("task", "").strip())
    if job is not None and not may_run(request.user, job):
        raise PermissionDenied  # as /jobs/<name>/: its form is for those who may run it
    fields = list(job.form_class()(prefix=PARAM_PREFIX)) if job else []
    return render(request, "scheduling/parameters.html", {"job": job, "fields": fields})


def form_preview(form, obj: PeriodicTask | None) -> preview.Preview | dict:
    """The preview beside the admin form: the saved task's, or the form's values."""
    now = timezone.now()
    if form.is_bound:
        return preview_from_data(form.data, now)
    if obj is None:
        initial = {name: form.get_initial_for_field(form.fields[name], name)
                   for name in ScheduleForm.base_fields}  # fmt: skip
        return preview_from_data(initial, now)
    return preview.preview(obj, now)


def preview_from_data(data: Mapping, now: dt.datetime) -> preview.Preview | dict:
    """A preview from form values, or the schedule fields' errors if they make none."""
    form = ScheduleForm(form_data_for_preview(data))
    if not form.is_valid():
        return {"errors": form.errors}
    one_off = form.cleaned_data.get("one_off") or str(data.get("one_off")) in {"on", "true"}
    task = PeriodicTask(enabled=True, one_off=bool(one_off))
    setattr(task, form.cleaned_data["kind"], form.schedule_row())
    return preview.preview(task, now)
