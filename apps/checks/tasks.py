"""Checks that fail their run, so failure alerts fire, when something is wrong."""

from typing import Annotated

from apps.jobs.catalog import job
from apps.jobs.params import MaxLength, Range, Validator

from . import http


@job(
    title="HTTP check",
    group="Checks",
    autoretry_for=(http.CheckUnreachable,),
    retry_backoff=5,
    retry_backoff_max=60,
    max_retries=3,
)
def http_check(
    url: Annotated[str, MaxLength(http.MAX_URL_LENGTH), Validator(http.validate_url)],
    expect_status: Annotated[int, Range(100, 599)] = 200,
    timeout_s: Annotated[float, Range(0.1, http.MAX_TIMEOUT_S)] = 10,
    contains: Annotated[str, MaxLength(1000)] = "",
) -> dict:
    """Fetch an http(s) URL; fail unless it answers `expect_status` (and holds `contains`).

    Records the status, the latency and whether the body contained the text (first
    1 MB). Connection errors are retried with backoff; a timeout or a wrong answer
    fails at once.
    """
    return http.http_check(url, expect_status, timeout_s, contains)
