"""Every answer under /api/ is JSON, even for unknown URLs and unexpected failures."""

import pytest

from tests.api.helpers import token_client
from tests.helpers import make_superuser

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("url", ["/api/", "/api/nowhere", "/api/runs/abc/", "/api/jobs/a/b/c"])
def test_an_unknown_url_under_the_api_is_a_json_404(url):
    response = token_client(make_superuser()).get(url)
    assert response.status_code == 404
    assert response.json()["detail"].startswith("No such endpoint")


def test_a_non_numeric_run_id_is_a_422_naming_it():
    response = token_client(make_superuser()).get("/api/runs/abc")
    assert response.status_code == 422
    assert "run_id" in response.json()["errors"]


def test_an_unexpected_failure_is_a_json_500_and_is_logged(monkeypatch, caplog):
    def broken():
        raise RuntimeError("boom")

    monkeypatch.setattr("apps.api.api.all_jobs", broken)
    response = token_client(make_superuser()).get("/api/jobs")
    assert response.status_code == 500
    assert response.json() == {"detail": "Internal server error.", "errors": {}}
    assert "boom" not in response.content.decode()
    assert any(record.name == "django.request" for record in caplog.records)
