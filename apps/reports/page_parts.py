"""What reports adds to the runs pages (apps.jobs.page_parts, from ReportsConfig.ready):
the Export CSV button above /runs/ and the download link on an export run's page."""

from django.template.loader import render_to_string

from apps.jobs import run_filters
from apps.jobs.catalog import get_job
from apps.jobs.permissions import may_run

from .export import EXPORT_JOB
from .models import Export


def export_button(context) -> str:
    """A POST form carrying every filter /runs/ applies now (parameter conditions too)."""
    request = context["request"]
    job = get_job(EXPORT_JOB)
    return render_to_string("reports/export_button.html", {
        "show": job is not None and may_run(request.user, job),
        "filters": [(name, value) for name, value in run_filters.page_pairs(request.GET) if value],
        "csrf_token": context.get("csrf_token"),
    })  # fmt: skip


def export_download_link(context) -> str:
    """On an export run's page: the download link once the file is written."""
    run = context["run"]
    if run.job_name != EXPORT_JOB:
        return ""
    export = Export.objects.filter(run=run).first()
    user = context["request"].user
    return render_to_string("reports/download_link.html", {
        "show": export is not None and export.may_download(user),
        "export": export,
        "expired": export is not None and export.is_expired(),
    })  # fmt: skip
