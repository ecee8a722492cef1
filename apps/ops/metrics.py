"""/metrics for Prometheus: read from the database and the broker at scrape time.

A custom collector in a fresh registry per scrape: nothing lives in process memory, so
every gunicorn worker answers the same, and a restart loses nothing.
"""

import hmac
import ipaddress
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count
from django.http import HttpRequest
from django.utils import timezone
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily

from apps.jobs import inspect
from apps.jobs.models import Run

from . import heartbeat
from .models import Incident, Kind

WINDOW = timedelta(hours=1)
DURATION_SAMPLE = 20_000
BUCKETS = (0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600)


class SwitchyardCollector:
    def collect(self):
        now = timezone.now()
        yield runs_by_job_and_state(now)
        yield active_runs()
        yield run_durations(now)
        yield from broker_metrics(inspect.snapshot())
        yield from beat_metrics()
        yield from incident_metrics()


def render() -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SwitchyardCollector())
    return generate_latest(registry)


def runs_by_job_and_state(now: datetime) -> GaugeMetricFamily:
    family = GaugeMetricFamily(
        "switchyard_runs", "Runs queued in the last hour, by job and current state.",
        labels=["job", "state"],
    )  # fmt: skip
    rows = (
        Run.objects.filter(queued_at__gte=now - WINDOW)
        .values_list("job_name", "state")
        .annotate(n=Count("id"))
        .order_by()
    )
    for job_name, state, n in rows:
        family.add_metric([job_name, state], n)
    return family


def active_runs() -> GaugeMetricFamily:
    family = GaugeMetricFamily(
        "switchyard_runs_active", "Runs queued or running now, by state.", labels=["state"]
    )
    for state, n in Run.objects.active().values_list("state").annotate(n=Count("id")).order_by():
        family.add_metric([state], n)
    return family


def run_durations(now: datetime) -> HistogramMetricFamily:
    """Run time of the runs finished in the last hour (newest DURATION_SAMPLE of them)."""
    family = HistogramMetricFamily(
        "switchyard_run_duration_seconds",
        "Run time (start to finish) of runs queued in the last hour, by job.",
        labels=["job"],
    )
    rows = (
        Run.objects.filter(
            queued_at__gte=now - WINDOW, started_at__isnull=False, finished_at__isnull=False
        )
        .order_by("-queued_at")
        .values_list("job_name", "started_at", "finished_at")[:DURATION_SAMPLE]
    )
    by_job: dict[str, list[float]] = {}
    for job_name, started, finished in rows:
        by_job.setdefault(job_name, []).append(max(0.0, (finished - started).total_seconds()))
    for job_name, durations in sorted(by_job.items()):
        family.add_metric([job_name], _buckets(durations), sum(durations))
    return family


def _buckets(durations: list[float]) -> list[tuple[str, int]]:
    cumulative = [(str(float(b)), sum(1 for d in durations if d <= b)) for b in BUCKETS]
    return [*cumulative, ("+Inf", len(durations))]


def broker_metrics(snap: inspect.Snapshot):
    up = GaugeMetricFamily("switchyard_broker_up", "1 if the broker answered.")
    up.add_metric([], 1 if snap.broker_ok else 0)
    workers = GaugeMetricFamily("switchyard_workers_online", "Workers answering inspect.")
    workers.add_metric([], len(snap.workers))
    depth = GaugeMetricFamily(
        "switchyard_queue_depth", "Messages waiting in each queue.", labels=["queue"]
    )
    for queue, n in snap.queues.items():
        depth.add_metric([queue], n)
    return up, workers, depth


def beat_metrics():
    age = heartbeat.age("beat")
    family = GaugeMetricFamily(
        "switchyard_beat_heartbeat_age_seconds", "Seconds since beat's last tick (absent: never)."
    )
    if age is not None:
        family.add_metric([], age.total_seconds())
    return (family,)


def incident_metrics():
    open_by_kind = dict(
        Incident.objects.open().values_list("kind").annotate(n=Count("id")).order_by()
    )
    missed = GaugeMetricFamily(
        "switchyard_missed_runs", "Schedules that missed their run and have not run since."
    )
    missed.add_metric([], open_by_kind.get(Kind.MISSED_RUN, 0))
    incidents = GaugeMetricFamily(
        "switchyard_incidents_open", "Open incidents by kind.", labels=["kind"]
    )
    for kind in Kind:
        incidents.add_metric([kind.value], open_by_kind.get(kind, 0))
    return missed, incidents


# Who may scrape -----------------------------------------------------------------------


def denial(request: HttpRequest) -> int | None:
    """None if the request may read /metrics, else the status to refuse it with."""
    if has_token(request) or _address_allowed(request.META.get("REMOTE_ADDR", "")):
        return None
    return 401 if settings.METRICS_TOKEN else 403


def has_token(request: HttpRequest) -> bool:
    """The request carries "Authorization: Bearer <METRICS_TOKEN>" (a token is set)."""
    token = settings.METRICS_TOKEN
    given = request.headers.get("Authorization", "")
    return bool(token) and hmac.compare_digest(given.encode(), f"Bearer {token}".encode())


def _address_allowed(address: str) -> bool:
    """The address is in one of METRICS_ALLOWED_IPS (networks, parsed by the settings)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in settings.METRICS_ALLOWED_IPS)
