"""http_check against a local server: each way a URL can fail, and one that passes."""

import pytest

from apps.checks.http import MAX_BODY_BYTES, CheckFailed, CheckUnreachable, http_check
from apps.devstack.processes import free_port

pytestmark = pytest.mark.usefixtures("allow_loopback")


def test_a_healthy_url_passes_with_status_latency_and_the_text_found(http_server):
    result = http_check(f"{http_server}/ok", contains="from switchyard")
    assert result["status"] == 200
    assert result["contained"] is True
    assert 0 < result["latency_ms"] <= result["elapsed_ms"]


def test_without_contains_the_body_is_not_judged(http_server):
    assert http_check(f"{http_server}/ok")["contained"] is None


def test_a_redirect_is_followed_to_the_final_answer(http_server):
    result = http_check(f"{http_server}/redirect", contains="hello")
    assert (result["status"], result["final_url"]) == (200, f"{http_server}/ok")


def test_a_redirect_to_a_non_http_scheme_is_refused(http_server):
    with pytest.raises(CheckFailed, match="redirected to a ftp URL"):
        http_check(f"{http_server}/redirect-to-ftp")


def test_a_wrong_status_fails_the_check(http_server):
    with pytest.raises(CheckFailed, match="status 500, expected 200"):
        http_check(f"{http_server}/server-error")


def test_an_expected_error_status_passes(http_server):
    assert http_check(f"{http_server}/missing", expect_status=404)["status"] == 404


def test_missing_text_fails_the_check(http_server):
    with pytest.raises(CheckFailed, match="does not contain 'goodbye'"):
        http_check(f"{http_server}/ok", contains="goodbye")


def test_no_response_within_the_timeout_fails_with_a_clear_message(http_server):
    with pytest.raises(CheckFailed, match=r"no response within 0\.5 s"):
        http_check(f"{http_server}/slow-headers", timeout_s=0.5)


def test_a_body_that_stalls_fails_on_timeout(http_server):
    with pytest.raises(CheckFailed, match=r"body not received within 0\.5 s"):
        http_check(f"{http_server}/slow-body", timeout_s=0.5)


def test_a_trickling_body_fails_once_the_whole_fetch_passes_the_timeout(http_server):
    with pytest.raises(CheckFailed, match="body not received within 1 s"):
        http_check(f"{http_server}/trickle", timeout_s=1)


def test_only_the_first_megabyte_of_the_body_is_read(http_server):
    with pytest.raises(CheckFailed, match="does not contain 'needle'"):
        http_check(f"{http_server}/big", contains="needle")
    assert http_check(f"{http_server}/big")["bytes_read"] == MAX_BODY_BYTES


@pytest.mark.parametrize(
    "url",
    [
        "ftp://127.0.0.1/file",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "http://",
        "127.0.0.1/ok",
    ],
)
def test_only_http_and_https_urls_are_accepted(url):
    with pytest.raises(ValueError, match="only http:// and https:// URLs"):
        http_check(url)


def test_a_refused_connection_is_reported_as_unreachable():
    with pytest.raises(CheckUnreachable):
        http_check(f"http://127.0.0.1:{free_port()}/", timeout_s=2)
