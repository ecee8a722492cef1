"""The dashboard (staff), its live parts, and the probes /healthz, /readyz, /metrics."""

from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from prometheus_client import CONTENT_TYPE_LATEST

from apps.control import status as control_status
from apps.control.rules import may_control
from apps.jobs import inspect

from . import charts, dashboard, health, metrics

# Each live part of the dashboard: what it shows, and how often it reloads (s).
PARTS = {
    "health": 5,
    "workers": 5,
    "queues": 5,
    "runs": 3,
    "stuck": 15,
    "failures": 15,
    "missed": 15,
    "charts": 60,
}


@staff_member_required
def dashboard_page(request: HttpRequest) -> HttpResponse:
    snap = inspect.snapshot()
    context = {"parts": PARTS}
    for name in PARTS:
        context.update(part_context(name, request, snap))
    return render(request, "ops/dashboard.html", context)


@staff_member_required
def dashboard_part(request: HttpRequest, name: str) -> HttpResponse:
    if name not in PARTS:
        raise Http404(name)
    context = {"parts": PARTS, **part_context(name, request, inspect.snapshot())}
    return render(request, f"ops/parts/{name}.html", context)


def part_context(name: str, request: HttpRequest, snap: inspect.Snapshot) -> dict:
    if name == "health":
        return {"snap": snap, "beat": dashboard.beat_status(),
                "incidents": dashboard.open_incidents(request.user)}  # fmt: skip
    if name == "workers":
        return {"snap": snap, "workers": dashboard.workers(snap, request.user),
                "lost_after": settings.WORKER_LOST_AFTER_SECONDS,
                "can_control": may_control(request.user)}  # fmt: skip
    if name == "queues":
        return {"snap": snap, "queue_rows": control_status.queue_rows(),
                "can_control": may_control(request.user)}  # fmt: skip
    if name == "runs":
        return {"active_runs": dashboard.in_progress(request.user, snap)}
    if name == "stuck":
        return {"stuck_runs": dashboard.stuck(request.user, snap)}
    if name == "failures":
        return {"failures": dashboard.recent_failures(request.user)}
    if name == "missed":
        return {"missed": dashboard.missed_schedules(request.user)}
    data = dashboard.chart_data(request.user)
    return {
        "runs_chart": charts.runs_per_hour_svg(data["hours"], data["counts"]),
        "durations_chart": charts.durations_svg(data["durations"]),
    }


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """The web process is alive; /readyz checks its dependencies."""
    return JsonResponse({"status": "ok"})


@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    """200 if every dependency answers, else 503; the details for staff only."""
    checks = health.readiness()
    body = health.as_json(checks, detailed=health.shows_details(request))
    return JsonResponse(body, status=200 if body["status"] == "ok" else 503)


@never_cache
def metrics_view(request: HttpRequest) -> HttpResponse:
    refused = metrics.denial(request)
    if refused:
        return HttpResponse("Not allowed: send the METRICS_TOKEN bearer token.\n",
                            status=refused, content_type="text/plain")  # fmt: skip
    return HttpResponse(metrics.render(), content_type=CONTENT_TYPE_LATEST)
