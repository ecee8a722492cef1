"""Switchyard's JSON API, under /api/: jobs with their parameter schema, runs, cancel, retry.

Built on django-ninja: the OpenAPI document (/api/openapi.json) is generated from the
endpoints' typed signatures and pydantic schemas, so it cannot drift from the code;
request validation comes with it, and the library is small (itself plus pydantic).
Django REST framework with drf-spectacular does the same with two larger packages and
serializers kept beside the types. DESCRIPTION below is the contract callers read.
"""

import json
import logging
from urllib.parse import urlencode

from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, QueryDict
from ninja import NinjaAPI, Path, Query, Status
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.parser import Parser
from ninja.renderers import JSONRenderer
from pydantic import ValidationError as PydanticValidationError

from apps.jobs import bulk, failures, json_values
from apps.jobs.catalog import Job, ParameterError, all_jobs, get_job
from apps.jobs.dispatch import cancel_refusal, cancel_run, rerun, start_run, start_runs
from apps.jobs.keyset import keyset_page
from apps.jobs.models import Run, Source
from apps.jobs.permissions import may_run
from apps.jobs.run_filters import FilterError, RunFilter, read_query

from .auth import docs_access, session_auth, token_auth, unauthorized
from .schemas import (
    MAX_ID,
    BulkIn,
    BulkOut,
    BulkPreview,
    Error,
    FailureGroupOut,
    JobOut,
    RetryIn,
    RunFilters,
    RunIn,
    RunOut,
    RunPage,
    RunsIn,
    RunsStarted,
    job_out,
    run_detail,
    run_summary,
)

request_log = logging.getLogger("django.request")
log = logging.getLogger(__name__)

DESCRIPTION = """\
Authenticate with `Authorization: Bearer <token>` (tokens are created in the admin) or,
from a browser, with the Django session plus the `X-CSRFToken` header on POST.

- Every error is JSON: `{"detail": "...", "errors": {"<field or parameter>": ["..."]}}`.
  400: the body is not JSON. 401: not authenticated (never a redirect). 403: the job is
  not yours to run, or the CSRF check failed. 404: no such job, or no such run *that
  you may see*: a run of a job you may not run answers 404, exactly like a missing one.
  405: a method the endpoint does not take; the message and `Allow` name those it does.
  409: cancelling a finished run, or a started run of a job that is not cancellable.
  413: body over Django's DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB). 422: invalid input;
  `errors` names each field or job parameter.
- Starting a run answers 201 with the run as recorded (queued; its message is sent once
  the request's transaction commits). `POST /api/jobs/<name>/runs/bulk` with
  `{"items": [{...}, ...]}` starts one run per item, all or nothing (422 names each bad
  item, as `items[3].x`, and records none); `"per_message": N` packs N runs into each
  Celery message (docs/writing-jobs.md). Repeating the request with the same
  `idempotency_key` answers 201 with the first run. Retry answers 201 with the new run.
  Cancel answers 202: a queued run is cancelled at once, a running one (of a job
  declared cancellable) when its worker hears.
- Run lists are newest first, paged by id without a COUNT(*): `?before=<id>&limit=50`;
  follow `next` until it is null.
"""


class StandardJsonRenderer(JSONRenderer):
    """Standard JSON only: Python's json writes a number that is not finite as NaN or
    Infinity, which strict parsers refuse. Stored values reach here already named
    (json_values.printable, for the run page, the CLI and this API alike); one that slips
    through is named the same way, not sent as invalid JSON nor turned into a 500, and
    logged as the bug it is."""

    def render(self, request: HttpRequest, data, *, response_status: int) -> str:
        try:
            return json.dumps(data, cls=self.encoder_class, allow_nan=False)
        except ValueError:
            log.error("a number that is not finite in the answer to %s: named", request.path)
            named = json_values.printable(json.loads(json.dumps(data, cls=self.encoder_class)))
            return json.dumps(named, allow_nan=False)


class StrictJsonParser(Parser):
    """Plain JSON only: NaN/Infinity and lone surrogates (which no database stores) are
    refused here, so ninja answers 400 instead of failing later with a 500."""

    def parse_body(self, request: HttpRequest):
        data = json.loads(request.body, parse_constant=json_values.refuse_constant)
        try:
            json.dumps(data, ensure_ascii=False).encode()
        except UnicodeEncodeError:  # a lone surrogate: say what and where, as the rule does
            raise ValueError(json_values.problem(data) or "a lone surrogate is not text") from None
        return data


api = NinjaAPI(
    title="Switchyard API",
    version="1",
    description=DESCRIPTION,
    auth=[token_auth, session_auth],
    urls_namespace="api",
    parser=StrictJsonParser(),
    renderer=StandardJsonRenderer(),
    docs_url=None,
    docs_decorator=docs_access,
)


def errors(*codes: int) -> dict[int, type[Error]]:
    return dict.fromkeys(codes, Error)


def error_response(request, status: int, detail: str, field_errors: dict | None = None):
    body = {"detail": detail, "errors": field_errors or {}}
    return api.create_response(request, body, status=status)


# Errors: always JSON ---------------------------------------------------------------------


@api.exception_handler(AuthenticationError)
def on_unauthenticated(request, exc):
    return unauthorized()


@api.exception_handler(HttpError)
def on_http_error(request, exc: HttpError):
    if exc.status_code == 400 and exc.__cause__ is not None:  # ninja: the body did not parse
        return error_response(request, 400, f"The body is not valid JSON: {exc.__cause__}")
    return error_response(request, exc.status_code, exc.message)


@api.exception_handler(Http404)
def on_not_found(request, exc: Http404):
    return error_response(request, 404, str(exc) or "Not found.")


@api.exception_handler(ValidationError)
def on_invalid_request(request, exc: ValidationError):
    field_errors: dict[str, list[str]] = {}
    for error in exc.errors:
        field_errors.setdefault(_field_name(error["loc"]), []).append(error["msg"])
    return error_response(request, 422, "Invalid request.", field_errors)


def _field_name(loc) -> str:
    """('body', 'body', 'parameters', 'x') -> 'parameters.x'; ('query', 'limit') -> 'limit'."""
    parts = [str(part) for part in loc[1:]]
    if loc and loc[0] == "body" and parts[:1] == ["body"]:
        parts = parts[1:]
    if loc and loc[0] == "query" and parts[:1] == ["filters"]:  # ('query', 'filters', 'state', 0)
        parts = [part for part in parts[1:] if not part.isdigit()]
    return ".".join(parts) or str(loc[0] if loc else "request")


@api.exception_handler(ParameterError)
def on_bad_parameters(request, exc: ParameterError):
    return error_response(request, 422, f"Invalid parameters: {exc.one_line()}", exc.errors)


@api.exception_handler(RequestDataTooBig)
def on_too_big(request, exc):
    return error_response(request, 413, "The request body is too large.")


@api.exception_handler(Exception)
def on_server_error(request, exc):
    """Logged like Django logs a 500 (so ADMINS still get the mail); answered in JSON."""
    request_log.error(
        "Internal Server Error: %s", request.path, exc_info=exc,
        extra={"status_code": 500, "request": request},
    )  # fmt: skip
    return error_response(request, 500, "Internal server error.")


# Jobs ------------------------------------------------------------------------------------

JobName = Path(..., description="The job's Celery task name.", examples=["apps.demo.tasks.add"])


@api.get("/jobs", response={200: list[JobOut], **errors(401)}, tags=["jobs"])
def list_jobs(request):
    """The jobs you may run, each with the JSON schema of its parameters."""
    return [job_out(job) for job in all_jobs() if may_run(request.auth, job)]


@api.get("/jobs/{name}", response={200: JobOut, **errors(401, 403, 404)}, tags=["jobs"])
def read_job(request, name: str = JobName):
    return job_out(runnable_job(request.auth, name))


@api.post(
    "/jobs/{name}/runs",
    response={201: RunOut, **errors(400, 401, 403, 404, 413, 422)},
    tags=["jobs"],
)
def start(request, body: RunIn, name: str = JobName):
    """Validate the parameters and start a run (source "api"); 422 names each bad one."""
    job = runnable_job(request.auth, name)
    run = start_run(
        job, body.parameters, source=Source.API, user=request.auth,
        idempotency_key=body.idempotency_key,
    )  # fmt: skip
    return Status(201, run_detail(run, request.auth))


@api.post(
    "/jobs/{name}/runs/bulk",
    response={201: RunsStarted, **errors(400, 401, 403, 404, 413, 422)},
    tags=["jobs"],
)
def start_many(request, body: RunsIn, name: str = JobName):
    """Start one run per item (source "api"), all or nothing: 422 names each bad item
    (`items[3].x`) and records none; the runs are written in one transaction and their
    messages published together once it commits."""
    job = runnable_job(request.auth, name)
    runs = start_runs(job, body.items, source=Source.API, user=request.auth,
                      per_message=body.per_message)  # fmt: skip
    started = [{"id": run.pk, "task_id": run.task_id, "state": run.state} for run in runs]
    return Status(201, {"count": len(runs), "runs": started})


def runnable_job(user, name: str) -> Job:
    job = get_job(name)
    if job is None:
        raise Http404("No such job.")
    if not may_run(user, job):
        raise HttpError(403, "You may not run this job.")
    return job


# Runs ------------------------------------------------------------------------------------

RunId = Path(..., ge=1, le=MAX_ID)


@api.get("/runs", response={200: RunPage, **errors(401, 422)}, tags=["runs"])
def list_runs(request, filters: Query[RunFilters]):
    """Runs you may see, newest first, with the filters of /runs/ (422 names a bad one).
    Follow `next` for older ones."""
    runs_filter = read_filters(request.GET)
    runs = Run.objects.visible_to(request.auth).select_related("requested_by", "handled_by")
    runs = runs_filter.apply(runs)
    after = (filters.before,) if filters.before is not None else None
    page = keyset_page(runs, ("id",), filters.limit, after=after)
    next_before = page.older[0] if page.older else None
    return {
        "items": [run_summary(run) for run in page.items],
        "next_before": next_before,
        "next": next_url(request, runs_filter, filters.limit, next_before),
    }


def read_filters(query) -> RunFilter:
    try:
        return read_query(query)
    except FilterError as error:
        raise InvalidFilters(error) from None


class InvalidFilters(Exception):
    def __init__(self, error: FilterError):
        self.error = error


@api.exception_handler(InvalidFilters)
def on_bad_filters(request, exc: InvalidFilters):
    return error_response(request, 422, f"Invalid filters: {exc.error.one_line()}",
                          exc.error.errors)  # fmt: skip


def next_url(request, runs_filter: RunFilter, limit: int, next_before: int | None) -> str | None:
    if next_before is None:
        return None
    return f"{request.path}?{runs_filter.query(limit=str(limit), before=str(next_before))}"


# Many runs at once ------------------------------------------------------------------------


@api.get("/runs/bulk/preview", response={200: BulkPreview, **errors(401, 422)}, tags=["runs"])
def bulk_preview(request, action: str = Query(..., pattern="^(retry|cancel|discard)$")):
    """How many runs `action` would touch with these filters (those of GET /api/runs):
    failed and not handled (retry, discard) or not started (cancel)."""
    pairs = [(k, v) for k, values in request.GET.lists() for v in values if k != "action"]
    runs_filter = read_filters(QueryDict(urlencode(pairs)))
    count = bulk.preview(request.auth, action, runs_filter)
    return {"action": action, "count": count, "query": runs_filter.query()}


@api.get("/runs/failed", response={200: list[FailureGroupOut], **errors(401, 422)}, tags=["runs"])
def failed_for_good(request):
    """Runs that failed for good (retries exhausted) and were not handled, grouped by
    exception type and exact message, largest first (the newest 10,000 failures), with
    the filters of /api/runs."""
    runs = read_filters(request.GET).apply(Run.objects.visible_to(request.auth))
    return [failure_group_out(group) for group in failures.failure_groups(runs)]


def failure_group_out(group) -> dict:
    query = urlencode(group.filters) if group.error_type else ""
    return {"error_type": group.error_type, "message": group.message, "count": group.count,
            "last_seen": group.last_seen, "jobs": sorted(group.jobs), "query": query}  # fmt: skip


@api.post(
    "/runs/bulk",
    response={200: BulkOut, 202: BulkOut, **errors(400, 401, 409, 413, 422)},
    tags=["runs"],
)
def bulk_act(request, body: BulkIn):
    """Act on every run of the filtered set, as GET /api/runs/bulk/preview counted it: 200 with
    the counts when done at once; 202 with `run` when more than 500 runs are worked
    through by a job (follow GET /api/runs/{run}). 409 if the set grew beyond
    `expected`. Runs of jobs you may not run are skipped and counted."""
    runs_filter = read_filters(QueryDict(body.query))
    try:
        outcome = bulk.start(request.auth, body.action, runs_filter, body.expected,
                             source=Source.API)  # fmt: skip
    except bulk.CountGrew as grew:
        raise HttpError(409, str(grew)) from None
    return Status(202 if outcome.run else 200, outcome.as_dict())


@api.get("/runs/{run_id}", response={200: RunOut, **errors(401, 404, 422)}, tags=["runs"])
def read_run(request, run_id: int = RunId):
    """One run, with its result and traceback once finished. 404 if not yours to see."""
    return run_detail(visible_run(request.auth, run_id), request.auth)


@api.post(
    "/runs/{run_id}/cancel",
    response={202: RunOut, **errors(401, 403, 404, 409, 413, 422)},
    tags=["runs"],
)
def cancel(request, run_id: int = RunId):
    """Revoke a queued run; stop a running one if its job is cancellable (409 says why
    not: the run has finished, or its job is not cancellable and it has started)."""
    run = actionable_run(request.auth, run_id)
    if not cancel_run(run, by=request.auth):
        raise HttpError(409, f"Not cancelled: {cancel_refusal(run)}.")
    return Status(202, run_detail(run, request.auth))


@api.post(
    "/runs/{run_id}/retry",
    response={201: RunOut, **errors(400, 401, 403, 404, 413, 422)},
    tags=["runs"],
    openapi_extra={"requestBody": {"required": False, "content": {
        "application/json": {"schema": RetryIn.model_json_schema()}}}},
)  # fmt: skip
def retry(request, run_id: int = RunId):
    """Run again with the same parameters; the new run's rerun_of is this one. A job's
    secrets are not stored: give them again in the optional body's `secrets` (422
    names any missing)."""
    run = actionable_run(request.auth, run_id)
    given = retry_body(request).secrets
    new = rerun(run, source=Source.API, user=request.auth, secret_values=given)
    return Status(201, run_detail(new, request.auth))


def retry_body(request) -> RetryIn:
    """The optional JSON body of a retry (none, or not JSON: nothing given again)."""
    if request.content_type != "application/json" or not request.body.strip():
        return RetryIn()
    try:
        return RetryIn.model_validate(StrictJsonParser().parse_body(request))
    except (ValueError, UnicodeError) as error:
        if isinstance(error, PydanticValidationError):
            fields = {".".join(map(str, e["loc"])) or "body": [e["msg"]] for e in error.errors()}
            raise ParameterError(fields) from None
        raise HttpError(400, "The body is not valid JSON.") from None


def visible_run(user, run_id: int) -> Run:
    run = Run.objects.visible_to(user).select_related("requested_by").filter(pk=run_id).first()
    if run is None:
        raise Http404("No such run.")
    return run


def actionable_run(user, run_id: int) -> Run:
    """A run the user may see and whose job they may run (any run, for superusers)."""
    run = visible_run(user, run_id)
    if not may_run(user, run.job_name):
        raise HttpError(403, "You may not run this job.")
    return run


# Queue and worker control (apps.control), registered before the catch-all below.
from . import control  # noqa: E402, F401

# Anything else under /api/ ------------------------------------------------------------------

ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


@api.api_operation(ALL_METHODS, "/", include_in_schema=False)
def api_root(request):
    raise Http404("No such endpoint; see /api/openapi.json.")


@api.api_operation(ALL_METHODS, "/{path:rest}", include_in_schema=False)
def no_such_endpoint(request, rest: str):
    """A JSON 404 (after authentication) instead of Django's HTML page."""
    raise Http404("No such endpoint; see /api/openapi.json.")
