"""Template pieces the runs pages include: the Export CSV button and the download link."""

from django import template

from apps.jobs.catalog import get_job
from apps.jobs.permissions import may_run

from ..export import EXPORT_JOB, FILTER_FIELDS
from ..models import Export

register = template.Library()


@register.inclusion_tag("reports/export_button.html", takes_context=True)
def export_button(context, filters=None) -> dict:
    """A POST form carrying the current /runs/ filters (a bound form or a QueryDict)."""
    request = context["request"]
    job = get_job(EXPORT_JOB)
    data = getattr(filters, "data", filters) or request.GET
    return {
        "show": job is not None and may_run(request.user, job),
        "filters": [(name, data.get(name)) for name in FILTER_FIELDS if data.get(name)],
        "csrf_token": context.get("csrf_token"),
    }


@register.inclusion_tag("reports/download_link.html", takes_context=True)
def export_download_link(context, run) -> dict:
    """On an export run's page: the download link once the file is written."""
    if run.job_name != EXPORT_JOB:
        return {"show": False}
    export = Export.objects.filter(run=run).first()
    user = context["request"].user
    return {
        "show": export is not None and export.may_download(user),
        "export": export,
        "expired": export is not None and export.is_expired(),
    }
