"""Fuzz the API from its own OpenAPI document (schemathesis): no 5xx, responses as documented.

A short, bounded run for every `make test`; issue 7's security work may fuzz longer.
"""

import pytest
import schemathesis
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections
from hypothesis import HealthCheck, settings

from tests.api.helpers import ADD, COUNTDOWN, make_run, make_token
from tests.helpers import make_superuser


@pytest.fixture
def wsgi_app():
    """Django's WSGI handler, built with the test settings, kept off the connection closing
    at the end of each request (as Django's test client does), so it sees the test data."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield WSGIHandler()
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def api_schema(db, wsgi_app):
    root = make_superuser()
    # Stored runs with parameters their job accepts (a retry validates them again).
    for job_name, parameters in ((ADD, {"x": 1, "y": 2}), (COUNTDOWN, {"seconds": 1}),
                                 ("apps.demo.tasks.mul", {"x": 1, "y": 2})):  # fmt: skip
        make_run(job_name=job_name, requested_by=root, parameters=parameters)
    headers = {"Authorization": f"Bearer {make_token(root)}"}
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", wsgi_app, headers=headers)
    schema.config.headers = headers  # sent with every generated request
    return schema


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.mark.slow
@schema.parametrize()
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_the_api_never_fails_and_always_answers_as_documented(case):
    excluded = []
    if case.operation.path in (
        "/api/jobs/{name}/runs",
        "/api/jobs/{name}/runs/bulk",
        "/api/runs/{run_id}/retry",
    ):
        # A job's parameters (and the secrets a retry gives again) follow that job's own
        # schema (GET /api/jobs/{name}), which this generic document cannot state: a
        # body valid here may rightly get a 422.
        excluded.append(schemathesis.checks.positive_data_acceptance)
    if case.operation.path in ("/api/runs", "/api/runs/bulk/preview", "/api/runs/bulk",
                               "/api/runs/failed"):  # fmt: skip
        # The run filters' dates must lie between 2000 and 2099 and their text hold no
        # control characters (apps.jobs.run_filters): a 422 the document cannot state.
        # And the document types the filters as text only (run_filters is their rule):
        # a "schema-violating" value is a non-text one, which a query string carries as
        # text all the same (`state=` for an empty list: any state, as on /runs/).
        excluded.append(schemathesis.checks.positive_data_acceptance)
        excluded.append(schemathesis.checks.negative_data_rejection)
    case.call_and_validate(excluded_checks=excluded)
