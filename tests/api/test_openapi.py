"""The OpenAPI document describes every endpoint and every error it can answer."""

import pytest

from tests.api.helpers import token_client
from tests.helpers import make_superuser

pytestmark = pytest.mark.django_db

EXPECTED = {
    ("get", "/api/jobs"): {"200", "401"},
    ("get", "/api/jobs/{name}"): {"200", "401", "403", "404"},
    ("post", "/api/jobs/{name}/runs"): {"201", "400", "401", "403", "404", "413", "422"},
    ("post", "/api/jobs/{name}/runs/bulk"): {"201", "400", "401", "403", "404", "413", "422"},
    ("get", "/api/runs"): {"200", "401", "422"},
    ("get", "/api/runs/bulk/preview"): {"200", "401", "422"},
    ("get", "/api/runs/failed"): {"200", "401", "422"},
    ("post", "/api/runs/bulk"): {"200", "202", "400", "401", "409", "413", "422"},
    ("get", "/api/runs/{run_id}"): {"200", "401", "404", "422"},
    ("post", "/api/runs/{run_id}/cancel"): {"202", "401", "403", "404", "409", "413", "422"},
    ("post", "/api/runs/{run_id}/retry"): {"201", "400", "401", "403", "404", "413", "422"},
    # Queue and worker control (apps/api/control.py)
    ("get", "/api/queues"): {"200", "401", "403"},
    ("post", "/api/queues/{name}/pause"): {"200", "401", "403", "404", "413", "422"},
    ("post", "/api/queues/{name}/resume"): {"200", "401", "403", "404", "413", "422"},
    ("post", "/api/queues/{name}/purge"): {"200", "400", "401", "403", "404", "413", "422", "503"},
    ("get", "/api/workers/{name}"): {"200", "401", "403", "404", "422", "503"},
    **{
        ("post", f"/api/workers/{{name}}/{action}"): {
            "200",
            "400",
            "401",
            "403",
            "404",
            "409",
            "413",
            "422",
            "503",
        }
        for action in ("grow", "shrink", "autoscale")
    },
    ("post", "/api/workers/{name}/shutdown"): {"200", "401", "403", "404", "413", "422", "503"},
    ("get", "/api/jobs/{name}/rate-limit"): {"200", "401", "403", "404", "422"},
    ("put", "/api/jobs/{name}/rate-limit"): {"200", "400", "401", "403", "404", "413", "422"},
}


def openapi() -> dict:
    response = token_client(make_superuser()).get("/api/openapi.json")
    assert response.status_code == 200
    return response.json()


def test_every_endpoint_and_its_error_responses_are_documented():
    paths = openapi()["paths"]
    documented = {
        (method, path): set(op["responses"])
        for path, ops in paths.items()
        for method, op in ops.items()
    }
    assert documented == EXPECTED


def test_every_error_response_has_the_error_schema():
    for ops in openapi()["paths"].values():
        for op in ops.values():
            for code, response in op["responses"].items():
                if code >= "400":
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}


def test_both_ways_of_authenticating_are_described():
    document = openapi()
    schemes = document["components"]["securitySchemes"]
    assert schemes["TokenAuth"] == {"type": "http", "scheme": "bearer"}
    assert schemes["SessionAuth"]["in"] == "cookie"
    for ops in document["paths"].values():
        for op in ops.values():
            assert op["security"] == [{"TokenAuth": []}, {"SessionAuth": []}]


def test_the_error_schema_has_detail_and_per_field_errors():
    error = openapi()["components"]["schemas"]["Error"]
    assert error["required"] == ["detail"]
    assert error["properties"]["errors"]["type"] == "object"
