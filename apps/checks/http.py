"""One HTTP check: fetch a URL, time it, look for a text, and say what was wrong."""

import http.client
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit

MAX_BODY_BYTES = 1_000_000
CHUNK_BYTES = 64 * 1024
ALLOWED_SCHEMES = ("http", "https")


class CheckFailed(Exception):
    """The URL answered, or timed out, but not as expected: the run fails, no retry."""


class CheckUnreachable(Exception):
    """The connection failed (refused, reset, DNS): transient, the task retries it."""


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects, but only to http and https URLs (urllib also allows ftp)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        scheme = urlsplit(newurl).scheme.lower()
        if scheme not in ALLOWED_SCHEMES:
            raise CheckFailed(f"redirected to a {scheme or 'relative'} URL: {newurl}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_opener = urllib.request.build_opener(_HttpOnlyRedirects)


def validate_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme.lower() not in ALLOWED_SCHEMES or not parts.hostname:
        raise ValueError(f"only http:// and https:// URLs can be checked, not {url!r}")


def http_check(
    url: str, expect_status: int = 200, timeout_s: float = 10, contains: str = ""
) -> dict:
    """Fetch `url`; return status, latency and whether the body held `contains`.

    Raises CheckFailed when the status or text is not as expected, or on a timeout
    (the whole fetch, body included, must finish within `timeout_s`), and
    CheckUnreachable when no connection could be made.
    """
    validate_url(url)
    started = time.monotonic()
    response = _open(url, timeout_s)
    with response:
        latency = time.monotonic() - started
        body = _read_body(response, started + timeout_s, timeout_s)
    result = {
        "url": url,
        "final_url": response.geturl(),
        "status": response.status,
        "latency_ms": round(latency * 1000, 1),
        "elapsed_ms": round((time.monotonic() - started) * 1000, 1),
        "bytes_read": len(body),
        "contains": contains,
        "contained": _contains(body, contains, response) if contains else None,
    }
    problems = _problems(result, expect_status)
    if problems:
        raise CheckFailed(f"{url}: {'; '.join(problems)} (after {result['elapsed_ms']} ms)")
    return result


def _open(url: str, timeout_s: float):
    # validate_url() allowed only http and https; redirects are held to the same.
    request = urllib.request.Request(url, headers={"User-Agent": "switchyard-http-check"})  # noqa: S310
    try:
        return _opener.open(request, timeout=timeout_s)
    except urllib.error.HTTPError as exc:
        return exc  # 4xx/5xx: still an answer, with a status and a body
    except TimeoutError:
        raise CheckFailed(f"{url}: no response within {timeout_s} s") from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise CheckFailed(f"{url}: no response within {timeout_s} s") from None
        raise CheckUnreachable(f"{url}: {exc.reason}") from exc
    except (ConnectionError, http.client.HTTPException) as exc:
        raise CheckUnreachable(f"{url}: {exc!r}") from exc


def _read_body(response, deadline: float, timeout_s: float) -> bytes:
    """Up to MAX_BODY_BYTES, in chunks, failing once the whole fetch passes timeout_s."""
    chunks, size = [], 0
    try:
        while size < MAX_BODY_BYTES:
            # read1: whatever has arrived, so a trickling body meets the deadline check.
            chunk = response.read1(min(CHUNK_BYTES, MAX_BODY_BYTES - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if time.monotonic() > deadline:
                raise CheckFailed(f"body not received within {timeout_s} s")
    except TimeoutError:
        raise CheckFailed(f"body not received within {timeout_s} s") from None
    except ConnectionError as exc:
        raise CheckUnreachable(f"connection lost while reading the body: {exc!r}") from exc
    return b"".join(chunks)


def _contains(body: bytes, text: str, response) -> bool:
    charset = response.headers.get_content_charset() or "utf-8"
    try:
        return text in body.decode(charset, errors="replace")
    except LookupError:  # an unknown charset name
        return text in body.decode("utf-8", errors="replace")


def _problems(result: dict, expect_status: int) -> list[str]:
    problems = []
    if result["status"] != expect_status:
        problems.append(f"status {result['status']}, expected {expect_status}")
    if result["contained"] is False:
        problems.append(f"the body does not contain {result['contains']!r}")
    return problems
