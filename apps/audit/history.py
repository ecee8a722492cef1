"""The history page of one object and the rows that belong to it (a schedule and its
options), in django-auditlog's own template."""

from django.contrib.admin.views.main import PAGE_VAR
from django.contrib.contenttypes.models import ContentType
from django.db.models import Q, QuerySet
from django.template.response import TemplateResponse
from django.utils.text import capfirst

from .models import AuditEntry

HISTORY_PAGE = 20


def entries_for(*objects) -> QuerySet:
    """Entries about these rows (a schedule and its options), newest first."""
    match = Q(pk__in=[])
    for obj in objects:
        content_type = ContentType.objects.get_for_model(obj)
        match |= Q(content_type=content_type, object_pk=str(obj.pk))
    entries = AuditEntry.objects.filter(match).select_related("actor", "content_type")
    return entries.order_by("-timestamp")


def history_response(model_admin, request, obj, *related) -> TemplateResponse:
    """django-auditlog's history page for `obj`, with the entries of `related` rows."""
    paginator = model_admin.get_paginator(request, entries_for(obj, *related), HISTORY_PAGE)
    page = paginator.get_page(request.GET.get(PAGE_VAR, 1))
    context = {
        **model_admin.admin_site.each_context(request),
        "title": f"History: {obj}",
        "module_name": str(capfirst(model_admin.model._meta.verbose_name_plural)),
        "page_range": paginator.get_elided_page_range(page.number),
        "page_var": PAGE_VAR,
        "pagination_required": paginator.count > HISTORY_PAGE,
        "object": obj,
        "opts": model_admin.model._meta,
        "log_entries": page,
    }
    return TemplateResponse(request, "audit/object_history.html", context)
