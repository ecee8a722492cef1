"""What the pages, the API and the CLI show about control: one reading each."""

import re
from dataclasses import dataclass

from celery import current_app

from apps.jobs import inspect
from apps.jobs.catalog import Job, queue_names

from . import broker
from .actions import declared_rate, paused_queues
from .models import RateLimit
from .rules import stored_rate_limits

PER_WORKER_NOTE = (
    "Celery applies a rate limit in each worker separately: with several workers "
    "consuming the job's queue, the site as a whole runs up to the limit times the "
    "number of workers."
)


@dataclass(frozen=True)
class RateSummary:
    job_name: str
    queue: str
    rate: str | None  # in force per worker (stored, else the code's), None: no limit
    stored: bool
    workers: int | None  # consuming the job's queue now (None: not asked)
    paused: bool
    ignored: str = ""  # a stored value that is not a rate limit (not applied)

    @property
    def total(self) -> str:
        """The effective limit of the workers alive: rate x workers, e.g. `30/m`."""
        if not self.rate:
            return "no limit"
        number, _, unit = self.rate.partition("/")
        if self.workers is None:
            return "not asked"
        if self.workers == 0:
            return "none: no worker consumes the queue"
        return f"{int(float(number)) * self.workers}/{unit or 's'}"


def rate_summary(job: Job, *, ask_workers: bool = True) -> RateSummary:
    """The job's limit; with ask_workers, how many workers consume its queue (up to
    a second's wait for their answers, so the job's page asks after loading)."""
    raw = RateLimit.objects.filter(job_name=job.name).values_list("rate", flat=True).first()
    stored = stored_rate_limits().get(job.name)
    queue = job.queue or current_app.conf.task_default_queue
    declared = declared_rate(job.name)
    return RateSummary(
        job_name=job.name, queue=queue, rate=stored or _as_text(declared),
        stored=stored is not None,
        workers=len(broker.consumers().get(queue, [])) if ask_workers else None,
        paused=queue in paused_queues(), ignored=raw if raw and not stored else "",
    )  # fmt: skip


def _as_text(rate) -> str | None:
    if rate in (None, "", 0):
        return None
    text = str(rate)
    return text if re.search(r"/[smh]$", text) else f"{text}/s"


@dataclass(frozen=True)
class QueueRow:
    name: str
    waiting: int | None
    paused: bool
    consumers: int


def queue_rows() -> list[QueueRow]:
    snap = inspect.snapshot()
    paused = paused_queues()
    consumers = broker.consumers()
    names = sorted(name for name in set(queue_names()) | paused if name.strip())
    return [
        QueueRow(name, snap.queues.get(name) if snap.broker_ok else None, name in paused,
                 len(consumers.get(name, [])))
        for name in names
    ]  # fmt: skip


def worker_detail(name: str) -> dict | None:
    """What the worker says about its pool and queues now; None if it does not answer.
    Raises BrokerUnreachable."""
    if "@" not in name:
        return None
    with broker.reachable(), inspect.connected() as conn:
        stats = _answer(conn, name, "stats")
        queues = _answer(conn, name, "active_queues") if stats is not None else None
    if stats is None:
        return None
    queues = queues or []
    pool = stats.get("pool") or {}
    return {
        "name": name,
        "processes": len(pool["processes"])
        if "processes" in pool
        else pool.get("max-concurrency"),
        "max_concurrency": pool.get("max-concurrency"),
        "autoscaler": stats.get("autoscaler") or None,
        "queues": sorted(q.get("name", "") for q in queues),
        "pid": stats.get("pid"),
    }


def _answer(conn, worker: str, command: str):
    replies = inspect.send(conn, command, reply=True, destination=[worker])
    return inspect.by_worker(replies).get(worker)
