"""Web views: the catalog, a job's form, the runs list and a run's page.

Each view is a thin wrapper around the catalog and `dispatch`; permissions come from
`permissions.may_run` and `Run.objects.visible_to`.
"""

import dataclasses
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
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from . import bulk, failures, forms, run_filters, secrets, sweeper
from .catalog import Job, ParameterError, all_jobs, get_job
from .dispatch import cancel_refusal, cancel_run, rerun, start_run
from .keyset import keyset_page
from .models import Run, Source
from .permissions import may_run
from .presenting import describe
from .upcoming import next_runs

PAGE_SIZE = 50

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
        initial = again_initial(request.user, job, request.GET.get("rerun"))
        form = form_class(initial={**initial, forms.IDEMPOTENCY_KEY: uuid.uuid4()})
    return render(request, "jobs/job_form.html", {"job": job, "form": form})


def again_initial(user, job: Job, rerun_pk: str | None) -> dict:
    """`?rerun=<run id>`: the form prefilled with that run's values but its secrets,
    which a re-run must be given again (apps/jobs/secrets.py)."""
    pk = rerun_pk or ""
    if not (pk.isascii() and pk.isdigit() and len(pk) <= 18):  # a database integer, or none
        return {}
    run = Run.objects.visible_to(user).filter(pk=int(pk), job_name=job.name).first()
    if run is None or not isinstance(run.parameters, dict):
        return {}
    hidden = set(secrets.secret_names(job.name))
    positional = run.args if isinstance(run.args, list) else []  # a Tasks API call's
    values = {**dict(zip([p.name for p in job.params], positional, strict=False)),
              **run.parameters}  # fmt: skip
    return {name: "\n".join(map(str, value)) if isinstance(value, list) else value
            for name, value in values.items() if name not in hidden}  # fmt: skip


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
    """The runs the user may see, filtered (an invalid standard filter is shown and left
    out; a refused parameter condition answers 400 with no runs), newest first."""
    filters = forms.RunFilterForm(request.GET)
    filters.is_valid()
    try:
        params = run_filters.read_params(request.GET)
    except run_filters.FilterError as error:
        return runs_page_response(request, filters, None, error.one_line(), status=400)
    found = dataclasses.replace(run_filters.standard_filter(filters.cleaned_data), params=params)
    runs = found.apply(Run.objects.visible_to(request.user).select_related("requested_by"))
    page = runs_page(runs, request.GET.get("after"), request.GET.get("before"))
    return runs_page_response(request, filters, page)


def runs_page_response(request, filters, page, error: str = "", status: int = 200):
    titles = {job.name: job.title for job in all_jobs()}
    for run in page.runs if page else ():
        run.job_title = titles.get(run.job_name, "")
    query = request.GET.copy()
    for key in ("after", "before"):
        query.pop(key, None)
    context = {"filters": filters, "page": page or Page([], None, None), "error": error,
               "job_names": sorted(titles), "params": param_tokens(request.GET),
               "filter_query": query.urlencode(), "actions": bulk.Action}  # fmt: skip
    return render(request, "jobs/runs.html", context, status=status)


def param_tokens(query) -> list[str]:
    """The parameter conditions as typed (k=v, k~v), to keep them in the filter form."""
    tokens = []
    for key, value in run_filters.param_pairs(query)[:20]:
        if key == "param":
            tokens.append(value)
            continue
        try:
            condition = run_filters.condition_from_pair(key, value)
            tokens.append(f"{condition.name}{condition.op}{condition.value}")
        except run_filters.FilterError:
            tokens.append(f"{key[len(run_filters.PARAM_PREFIX) :]}={value}")
    return tokens


RUNS_ORDER = ("queued_at", "id")  # the run_newest index


def runs_page(runs: QuerySet, after: str | None, before: str | None) -> Page:
    """One page of `keyset.keyset_page`, newest first; `after` pages to older runs,
    `before` to newer, each a cursor of this page's links."""
    page = keyset_page(runs, RUNS_ORDER, PAGE_SIZE, after=parse_cursor(after),
                       before=parse_cursor(before))  # fmt: skip
    return Page(page.items, _cursor(page.newer), _cursor(page.older))


EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
MICROSECOND = dt.timedelta(microseconds=1)


def _cursor(key: tuple[dt.datetime, int] | None) -> str | None:
    if key is None:
        return None
    queued_at, pk = key
    return f"{(queued_at - EPOCH) // MICROSECOND}_{pk}"


def parse_cursor(raw: str | None) -> tuple[dt.datetime, int] | None:
    try:
        micros, pk = (int(part) for part in (raw or "").split("_"))
        return EPOCH + micros * MICROSECOND, pk
    except (ValueError, OverflowError):
        return None


# Many runs at once ---------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@login_required
def runs_bulk(request: HttpRequest) -> HttpResponse:
    """GET: how many runs the action would touch, and a confirmation carrying the filter
    and that count. POST: act (the set worked out again, refused if it grew)."""
    data = request.POST if request.method == "POST" else request.GET
    action = data.get("action", "")
    if action not in bulk.Action.values:
        return bulk_refused(request, f"unknown action {action[:50]!r}")
    query = data.get("query", "") if request.method == "POST" else filter_query(request.GET)
    try:
        runs_filter = run_filters.read_query(QueryDict(query))
    except run_filters.FilterError as error:
        return bulk_refused(request, error.one_line())
    if request.method == "POST":
        return bulk_act(request, bulk.Action(action), runs_filter, data.get("expected", ""))
    count = bulk.preview(request.user, action, runs_filter)
    return bulk_page(request, bulk.Action(action), runs_filter, count)


def filter_query(query) -> str:
    query = query.copy()
    for key in ("action", "after", "before", "csrfmiddlewaretoken"):
        query.pop(key, None)
    return query.urlencode()


def bulk_page(request, action, runs_filter, count: int, error: str = "", status: int = 200):
    context = {"action": action, "count": count, "query": runs_filter.query(),
               "filters": runs_filter.pairs, "error": error,
               "inline_limit": bulk.INLINE_LIMIT}  # fmt: skip
    return render(request, "jobs/runs_bulk.html", context, status=status)


def bulk_refused(request, reason: str) -> HttpResponse:
    context = {"action": None, "error": f"Refused: {reason}", "filters": (), "count": 0}
    return render(request, "jobs/runs_bulk.html", context, status=400)


def bulk_act(request, action, runs_filter, raw_expected: str) -> HttpResponse:
    try:
        expected = int(raw_expected)
        if not 0 <= expected <= 10**9:
            raise ValueError
    except ValueError:
        return bulk_refused(request, "the confirmed count is missing or not a number")
    try:
        outcome = bulk.start(request.user, action, runs_filter, expected, source=Source.WEB)
    except bulk.CountGrew as grew:
        return bulk_page(request, action, runs_filter, grew.count, error=str(grew), status=409)
    if outcome.run is not None:
        messages.info(request, outcome.summary())
        return redirect(outcome.run)
    messages.success(request, outcome.summary())
    return redirect(f"{reverse('jobs:runs')}?{runs_filter.query()}")


@require_GET
@login_required
def runs_failed(request: HttpRequest) -> HttpResponse:
    """Failed for good (retries exhausted, not handled), grouped by error."""
    filters = forms.RunFilterForm(request.GET)
    runs = filters.apply(Run.objects.visible_to(request.user))
    groups = failures.failure_groups(runs)
    for group in groups:
        group.query = urlencode(group.filters) if group.error_type else ""
    total = runs.unhandled_failures().count()
    context = {"groups": groups, "filters": filters, "total": total,
               "capped": total > failures.NEWEST, "newest": failures.NEWEST}  # fmt: skip
    return render(request, "jobs/runs_failed.html", context)


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
    if cancel_run(run, by=request.user):
        messages.success(request, "Cancel requested.")
    else:
        messages.error(request, f"Not cancelled: {cancel_refusal(run)}.")
    return redirect(run)


@require_POST
@login_required
def run_again(request: HttpRequest, pk: int) -> HttpResponse:
    run = runnable_run(request.user, pk)
    key = forms.parse_key(request.POST.get(forms.IDEMPOTENCY_KEY))
    if secrets.withheld(run.job_name, run.parameters, run.args):
        messages.info(request, "This job takes a secret: enter it again to run it again.")
        return redirect(f"{reverse('jobs:job', args=[run.job_name])}?rerun={run.pk}")
    try:
        return redirect(rerun(run, source=Source.WEB, user=request.user, idempotency_key=key))
    except ParameterError as exc:
        messages.error(request, f"Not run again: {exc.one_line()}")
        return redirect(run)


@require_POST
@login_required
def run_resend(request: HttpRequest, pk: int) -> HttpResponse:
    """Send a stuck run's message again (same task id: it still runs at most once)."""
    run = runnable_run(request.user, pk)
    try:
        sent = sweeper.resend(run, sweeper.alive_workers())
    except sweeper.NotStuck as why:
        messages.error(request, f"Not sent again: {why}.")
        return redirect(run)
    if sent:
        messages.success(request, "Sent again.")
    else:
        messages.warning(request, "Not sent: the broker is down; it is sent once it is back.")
    return redirect(run)


def is_stuck(run: Run) -> bool:
    """The sweeper's rule, which Resend keeps too; a finished run asks no worker."""
    return not run.is_finished and sweeper.is_stuck(run, sweeper.alive_workers())


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
    """The run as `presenting.describe` says a reader sees it, formatted for the page."""
    view = describe(run, user)
    return {
        "run": run,
        "view": view,
        "job": get_job(run.job_name),
        "parameters": pretty_json(view.parameters),
        "result": pretty_json(view.result) if view.has_result else None,
        "traceback": view.traceback,
        "can_cancel": view.may_cancel,
        "can_rerun": view.may_rerun,
        "stuck": is_stuck(run),
        "schedule_url": view.schedule_url,
        "rerun_key": uuid.uuid4(),
    }


def pretty_json(value) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
