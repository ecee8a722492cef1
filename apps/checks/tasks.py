"""Checks that fail their run, so failure alerts fire, when something is wrong."""

from apps.jobs.catalog import job

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
    url: str, expect_status: int = 200, timeout_s: float = 10, contains: str = ""
) -> dict:
    """Fetch an http(s) URL; fail unless it answers `expect_status` (and holds `contains`).

    Records the status, the latency and whether the body contained the text (first
    1 MB). Connection errors are retried with backoff; a timeout or a wrong answer
    fails at once.
    """
    return http.http_check(url, expect_status, timeout_s, contains)
