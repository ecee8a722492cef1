"""Production settings on a real response: HTTPS only, secure cookies, HSTS, no framing.

`manage.py check --deploy` (tests/deploy/test_settings.py) checks the settings; this
checks what a browser actually receives from them, in a fresh production process.
"""

import json

import pytest

from tests.deploy.test_settings import manage

pytestmark = [pytest.mark.slow, pytest.mark.once]  # the probe has an in-memory SQLite of its own

PROBE = "from tests.security.production_probe import probe; probe()"


@pytest.fixture(scope="module")
def production(tmp_path_factory) -> dict:
    tmp_path = tmp_path_factory.mktemp("production")
    result = manage(tmp_path, "shell", "-v", "0", "-c", PROBE, DATABASE_URL="sqlite://:memory:")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_responses_carry_hsts_for_a_year_with_subdomains(production):
    hsts = production["headers"]["Strict-Transport-Security"]
    assert hsts == "max-age=31536000; includeSubDomains; preload"


def test_pages_may_not_be_framed_or_sniffed(production):
    assert production["headers"]["X-Frame-Options"] == "DENY"
    assert production["headers"]["X-Content-Type-Options"] == "nosniff"


def test_session_and_csrf_cookies_are_secure_and_the_session_is_out_of_scripts_reach(production):
    assert production["login_status"] == 302
    assert production["session_cookie"] == {"secure": True, "httponly": True, "samesite": "Lax"}
    assert production["csrf_cookie"]["secure"] is True


def test_plain_http_is_sent_to_https_except_the_probes(production):
    assert production["http"] == [301, "https://example.com/admin/login/"]
    assert production["healthz_over_http"] == 200
