"""Web views: the catalog, a job's form, the runs list and a run's page.

Each view is a thin wrapper around the catalog and `dispatch`; permissions come from
`permissions.may_run` and `Run.objects.visible_to`.
"""

import datetime as dt
import itertools
import json
import operator
import uuid
from dataclasses import dataclass
from functools import reduce
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet, Subquery
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_celery_results.models import TaskResult

from apps.scheduling.models import Schedule

from . import forms, sweeper
from .catalog import Job, ParameterError, all_jobs, get_job
from .dispatch import cancel_run, rerun, start_run
from .models import Run, Source, State
from .permissions import may_run

PAGE_SIZE = 50
NOT_STARTED = (State.PENDING_SEND, State.QUEUED, State.RETRYING)

# The catalog ---------------------------------------------------------------------------


@dataclass
class CatalogEntry:
    job: Job
    last_run: Run | None
    next_run_at: dt.datetime | None


@require_GET
@login_required
def catalog(request: HttpRequest) -> HttpResponse:
    jobs = [job for job in all_jobs() if may_run(request.user, job)]
    names = [job.name for job in jobs]
    last, upcoming = last_runs(names), next_runs(names, timezone.now())
    entries = [CatalogEntry(job, last.get(job.name), upcoming.get(job.name)) for job in jobs]
    groups = [
        (group, list(items))
        for group, items in itertools.groupby(entries, key=lambda e: e.job.group)
    ]
    return render(request, "jobs/catalog.html", {"groups": groups})


def last_runs(job_names: list[str]) -> dict[str, Run]:
    """The newest run of each job, in one query (one index probe per job)."""
    if not job_names:
        return {}
    newest = [
        Q(pk=Subquery(Run.objects.filter(job_name=name).order_by("-queued_at", "-id")
                      .values("pk")[:1]))
        for name in job_names
    ]  # fmt: skip
    return {run.job_name: run for run in Run.objects.filter(reduce(operator.or_, newest))}


def next_runs(job_names: list[str], now: dt.datetime) -> dict[str, dt.datetime]:
    """The next time beat sends each job, over its enabled schedules (one query)."""
    upcoming: dict[str, dt.datetime] = {}
    for schedule in Schedule.objects.enabled().for_jobs(job_names).with_schedules():
        due = schedule.next_run_at(now)  # None for a schedule beat skips as broken
        if due and (schedule.task not in upcoming or due < upcoming[schedule.task]):
            upcoming[schedule.task] = due
    return upcoming


# A job's form --------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@login_required
def job_form(request: HttpRequest, name: str) -> HttpResponse:
    job = get_job(name)
    if job is None:
        raise Http404("No such job.")
    if not may_run(request.user, job):
        raise PermissionDenied
    form_class = forms.job_form_class(job)
    if request.method == "POST":
        form = form_class(request.POST)
        run = form.is_valid() and start_from_form(request, job, form)
        if run:
            return redirect(run)
    else:
        form = form_class(initial={forms.IDEMPOTENCY_KEY: uuid.uuid4()})
    return render(request, "jobs/job_form.html", {"job": job, "form": form})


def start_from_form(request: HttpRequest, job: Job, form) -> Run | None:
    try:
        return start_run(
            job, forms.job_parameters(job, form), source=Source.WEB, user=request.user,
            idempotency_key=forms.idempotency_key(form),
        )  # fmt: skip
    except ParameterError as exc:
        for field, errors in exc.errors.items():
            form.add_error(field if field in form.fields else None, errors)
        return None


# The runs list -------------------------------------------------------------------------


@dataclass
class Page:
    runs: list[Run]
    newer: str | None  # cursor of the page before (newer runs), if any
    older: str | None  # cursor of the page after (older runs), if any


@require_GET
@login_required
def run_list(request: HttpRequest) -> HttpResponse:
    filters = forms.RunFilterForm(request.GET)
    runs = filters.apply(Run.objects.visible_to(request.user).select_related("requested_by"))
    page = keyset_page(runs, request.GET.get("after"), request.GET.get("before"))
    titles = {job.name: job.title for job in all_jobs()}
    for run in page.runs:
        run.job_title = titles.get(run.job_name, "")
    context = {"filters": filters, "page": page, "job_names": sorted(titles)}
    return render(request, "jobs/runs.html", context)


def keyset_page(runs: QuerySet, after: str | None, before: str | None) -> Page:
    """One page, newest first, without COUNT(*): fetch one row more than shown to know
    whether another page follows. `after` pages to older runs, `before` to newer."""
    if key := parse_cursor(before):
        return _newer_page(runs, *key)
    return _older_page(runs, parse_cursor(after))


def _older_page(runs: QuerySet, key: tuple[dt.datetime, int] | None) -> Page:
    runs = runs.order_by("-queued_at", "-id")
    if key:
        at, pk = key  # `queued_at <= at` first, so the index range does the work
        runs = runs.filter(queued_at__lte=at).filter(Q(queued_at__lt=at) | Q(pk__lt=pk))
    rows = list(runs[: PAGE_SIZE + 1])
    shown = rows[:PAGE_SIZE]
    older = cursor(shown[-1]) if len(rows) > PAGE_SIZE else None
    return Page(shown, _cursor_or_none(shown, 0) if key else None, older)


def _newer_page(runs: QuerySet, at: dt.datetime, pk: int) -> Page:
    runs = runs.filter(queued_at__gte=at).filter(Q(queued_at__gt=at) | Q(pk__gt=pk))
    rows = list(runs.order_by("queued_at", "id")[: PAGE_SIZE + 1])
    shown = rows[:PAGE_SIZE][::-1]
    newer = cursor(shown[0]) if len(rows) > PAGE_SIZE else None
    return Page(shown, newer, _cursor_or_none(shown, -1))


EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
MICROSECOND = dt.timedelta(microseconds=1)


def cursor(run: Run) -> str:
    return f"{(run.queued_at - EPOCH) // MICROSECOND}_{run.pk}"


def _cursor_or_none(runs: list[Run], index: int) -> str | None:
    return cursor(runs[index]) if runs else None


def parse_cursor(raw: str | None) -> tuple[dt.datetime, int] | None:
    try:
        micros, pk = (int(part) for part in (raw or "").split("_"))
        return EPOCH + micros * MICROSECOND, pk
    except (ValueError, OverflowError):
        return None


# A run's page --------------------------------------------------------------------------


@require_GET
@login_required
def run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The whole page, or (for htmx polling) only its live part."""
    run = visible_run(request.user, pk)
    template = "jobs/_run_live.html" if request.htmx else "jobs/run.html"
    return render(request, template, run_context(request.user, run))


@require_POST
@login_required
def run_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    run = runnable_run(request.user, pk)
    if cancel_run(run):
        messages.success(request, "Cancel requested.")
    else:
        messages.info(request, "The run had already finished.")
    return redirect(run)


@require_POST
@login_required
def run_again(request: HttpRequest, pk: int) -> HttpResponse:
    run = runnable_run(request.user, pk)
    key = forms.parse_key(request.POST.get(forms.IDEMPOTENCY_KEY))
    return redirect(rerun(run, source=Source.WEB, user=request.user, idempotency_key=key))


@require_POST
@login_required
def run_resend(request: HttpRequest, pk: int) -> HttpResponse:
    """Send a stuck run's message again (same task id: it still runs at most once)."""
    run = runnable_run(request.user, pk)
    if sweeper.resend(run):
        messages.success(request, "Sent again.")
    else:
        messages.warning(request, "Not sent: the run is not stuck, or the broker is down.")
    return redirect(run)


def is_stuck(run: Run) -> bool:
    """Queued past the threshold, or started on a worker that no longer answers."""
    if run.is_finished:
        return False
    from apps.ops.inspect import snapshot  # the dashboard's cached, time-limited view

    snap = snapshot()
    alive = snap.worker_names if snap.broker_ok else None
    return sweeper.stuck_runs(alive).filter(pk=run.pk).exists()


def visible_run(user, pk: int) -> Run:
    """The run, if this user may see it: 403 otherwise, with nothing about it."""
    runs = Run.objects.select_related("requested_by", "rerun_of")
    run = runs.visible_to(user).filter(pk=pk).first()
    if run is None:
        raise PermissionDenied if Run.objects.filter(pk=pk).exists() else Http404()
    return run


def runnable_run(user, pk: int) -> Run:
    run = visible_run(user, pk)
    if not may_run(user, run.job_name):
        raise PermissionDenied
    return run


def run_context(user, run: Run) -> dict:
    job = get_job(run.job_name)
    task_result = TaskResult.objects.filter(task_id=run.task_id).first()
    finished = task_result if run.is_finished else None  # while running it holds progress
    allowed = may_run(user, run.job_name)
    return {
        "run": run,
        "job": job,
        "parameters": pretty_json(run.parameters),
        "result": pretty_json_text(finished.result) if finished else None,
        "traceback": finished.traceback if finished else None,
        "can_cancel": allowed and may_cancel(run, job),
        "can_rerun": allowed,
        "stuck": is_stuck(run),
        "schedule_url": schedule_url(run) if allowed and user.has_perm(ADD_SCHEDULE) else "",
        "rerun_key": uuid.uuid4(),
    }


ADD_SCHEDULE = "django_celery_beat.add_periodictask"


def may_cancel(run: Run, job: Job | None) -> bool:
    """A run not yet started can be revoked; a running one only if its job allows it."""
    if run.is_finished or run.cancel_requested_at:
        return False
    return run.state in NOT_STARTED or bool(job and job.cancellable)


def schedule_url(run: Run) -> str:
    """The admin's add form of a periodic task, prefilled with this job and parameters."""
    prefill = {"task": run.job_name, "kwargs": json.dumps(run.parameters)}
    if run.args:
        prefill["args"] = json.dumps(run.args)
    return f"{reverse('admin:django_celery_beat_periodictask_add')}?{urlencode(prefill)}"


def pretty_json(value) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def pretty_json_text(text: str | None) -> str | None:
    """The result backend stores JSON text; indent it (or show it as it is)."""
    if text is None:
        return None
    try:
        return pretty_json(json.loads(text))
    except ValueError:
        return text
