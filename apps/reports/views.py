"""Start an export of the runs list, and download it once it is written."""

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from apps.jobs import run_filters
from apps.jobs.catalog import ParameterError, get_job
from apps.jobs.dispatch import start_run
from apps.jobs.models import Source
from apps.jobs.permissions import may_run

from .export import EXPORT_JOB
from .models import Export


@require_POST
@login_required
def start_export(request: HttpRequest) -> HttpResponse:
    """Export what /runs/ shows with the posted filters; go to the export's run page."""
    job = get_job(EXPORT_JOB)
    if job is None or not may_run(request.user, job):
        raise PermissionDenied
    pairs = [(name, value.strip()) for name, value in run_filters.page_pairs(request.POST)]
    back = f"{reverse('jobs:runs')}?{urlencode(pairs)}"
    try:
        found = run_filters.read((name, value) for name, value in pairs if value)
        run = start_run(job, {"filters": found.query()}, source=Source.WEB, user=request.user)
    except (run_filters.FilterError, ParameterError) as exc:
        messages.error(request, f"Export not started: {exc.one_line()}")
        return redirect(back)
    return redirect(run)


@require_GET
@login_required
def download_export(request: HttpRequest, run_id: int) -> FileResponse:
    export = Export.objects.filter(run_id=run_id).first()
    if export is None:
        raise Http404("No export for this run (yet).")
    if not export.may_download(request.user):
        raise PermissionDenied
    path = export.path
    if path is None:
        raise Http404("No export for this run.")  # a file name outside the exports folder
    if export.is_expired() or not path.is_file():
        return HttpResponse("This export has expired.", status=410, content_type="text/plain")
    name = f"runs-{export.created_at:%Y%m%d-%H%M%S}.csv"
    return FileResponse(path.open("rb"), as_attachment=True, filename=name,
                        content_type="text/csv")  # fmt: skip
