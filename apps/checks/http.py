"""One HTTP check: fetch a URL, time it, look for a text, and say what was wrong.

Only public addresses are fetched unless settings.HTTP_CHECK_ALLOWED_HOSTS names the
host (or a network holding its address): loopback, private, link-local, reserved,
multicast, unspecified addresses and IPv6 forms of an IPv4 address are refused. The
host is resolved once per request, every address it resolves to is judged, and the
connection goes to one of those very addresses (so a second DNS answer cannot point it
elsewhere). Redirects are followed by hand, each judged the same way, at most
MAX_REDIRECTS of them.
"""

import http.client
import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import SplitResult, urljoin, urlsplit

from django.conf import settings

MAX_BODY_BYTES = 1_000_000
CHUNK_BYTES = 64 * 1024
ALLOWED_SCHEMES = ("http", "https")
MAX_URL_LENGTH = 2048
MAX_TIMEOUT_S = 120
MAX_REDIRECTS = 10
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
HEADERS = {"User-Agent": "switchyard-http-check"}

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# IPv6 prefixes that carry an IPv4 address (NAT64, IPv4-compatible), besides the
# mapped, 6to4 and Teredo forms `ipaddress` knows by name.
_EMBEDS_IPV4 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("::/96"))
_INTERNAL = (
    ("is_link_local", "a link-local address"),
    ("is_multicast", "a multicast address"),
    ("is_private", "a private address"),
    ("is_reserved", "a reserved address"),
)


class CheckFailed(Exception):
    """The URL answered, or timed out, but not as expected: the run fails, no retry."""


class CheckUnreachable(Exception):
    """The connection failed (refused, reset, DNS): transient, the task retries it."""


class AddressRefused(CheckFailed):
    """The URL leads to an internal address that is not allowed: nothing was sent."""


# Which addresses may be fetched ---------------------------------------------------------


def validate_url(url: str) -> None:
    """What can be judged without DNS: http(s), a host, and no internal IP literal.

    Raises ValueError with the reason. Host names are judged when connecting.
    """
    parts = _split(url)
    address = literal_address(parts.hostname)
    if address is not None:
        reason = refusal(parts.hostname, address)
        if reason:
            raise ValueError(reason)


def _split(url: str) -> SplitResult:
    parts = urlsplit(url)
    if parts.scheme.lower() not in ALLOWED_SCHEMES or not parts.hostname:
        raise ValueError(f"only http:// and https:// URLs can be checked, not {_shown(url)}")
    try:
        parts.port  # noqa: B018 (raises ValueError when out of range)
    except ValueError:
        raise ValueError(f"not a valid port in {_shown(url)}") from None
    return parts


def _shown(url: str, limit: int = 100) -> str:
    return repr(url) if len(url) <= limit else f"{url[:limit]!r}..."


def literal_address(host: str) -> IPAddress | None:
    """The address a host written as a number stands for (127.0.0.1, ::1, but also
    2130706433, 0x7f.1 and 127.1, which the C resolver reads as IPv4), else None."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        numeric = socket.AI_NUMERICHOST
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM, flags=numeric)
    except (OSError, UnicodeError, ValueError):
        return None  # a host name: judged once resolved
    return ipaddress.ip_address(infos[0][4][0])


def refusal(host: str, address: IPAddress) -> str | None:
    """Why `host` at `address` may not be fetched, or None when it may."""
    names, networks = _allowed()
    if host.lower().rstrip(".") in names or any(address in net for net in networks):
        return None
    reason = internal_reason(address)
    if reason is None:
        return None
    return (f"{host} is {reason} ({address}), which HTTP checks may not reach unless "
            f"HTTP_CHECK_ALLOWED_HOSTS lists it")  # fmt: skip


def internal_reason(address: IPAddress) -> str | None:
    """What makes an address internal (not for checks by default), or None if public."""
    if address.is_loopback:
        return "a loopback address"
    if address.is_unspecified:
        return "an unspecified address"
    if address.version == 6 and _embeds_ipv4(address):
        return "an IPv6 form of an IPv4 address"
    for attribute, words in _INTERNAL:
        if getattr(address, attribute):
            return words
    return None if address.is_global else "not a public address"


def _embeds_ipv4(address: ipaddress.IPv6Address) -> bool:
    embedded = address.ipv4_mapped or address.sixtofour or address.teredo
    return bool(embedded) or any(address in net for net in _EMBEDS_IPV4)


def _allowed() -> tuple[set[str], list]:
    """HTTP_CHECK_ALLOWED_HOSTS, which the settings parsed and checked, as its host names
    (lower case) and its networks (an address is a /32 or /128)."""
    entries = settings.HTTP_CHECK_ALLOWED_HOSTS
    names = {entry for entry in entries if isinstance(entry, str)}
    return names, [entry for entry in entries if not isinstance(entry, str)]


def resolve(host: str, port: int) -> list[str]:
    """Every address the host resolves to, in the resolver's order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def vetted_addresses(host: str, port: int) -> list[str]:
    """Resolve once; refuse if any address is internal and not allowed."""
    try:
        addresses = resolve(host, port)
    except (OSError, UnicodeError) as exc:
        raise CheckUnreachable(f"{host}: {exc}") from exc
    for address in addresses:
        reason = refusal(host, ipaddress.ip_address(address.split("%", 1)[0]))
        if reason:
            raise AddressRefused(reason)
    return addresses


# Fetching ---------------------------------------------------------------------------


def http_check(
    url: str, expect_status: int = 200, timeout_s: float = 10, contains: str = ""
) -> dict:
    """Fetch `url`; return status, latency and whether the body held `contains`.

    Raises CheckFailed when the status or text is not as expected, or on a timeout
    (the whole fetch, body included, must finish within `timeout_s`), AddressRefused
    (a CheckFailed) when it leads to an internal address, and CheckUnreachable when
    no connection could be made.
    """
    validate_url(url)
    started = time.monotonic()
    deadline = started + timeout_s
    fetched = _follow(url, deadline, timeout_s)
    try:
        latency = time.monotonic() - started
        body = _read_body(fetched.response, deadline, timeout_s)
    finally:
        fetched.close()
    result = {
        "url": url,
        "final_url": fetched.url,
        "status": fetched.response.status,
        "latency_ms": round(latency * 1000, 1),
        "elapsed_ms": round((time.monotonic() - started) * 1000, 1),
        "bytes_read": len(body),
        "contains": contains,
        "contained": _contains(body, contains, fetched.response) if contains else None,
    }
    problems = _problems(result, expect_status)
    if problems:
        raise CheckFailed(f"{url}: {'; '.join(problems)} (after {result['elapsed_ms']} ms)")
    return result


@dataclass
class _Fetched:
    url: str
    connection: http.client.HTTPConnection
    response: http.client.HTTPResponse

    def close(self) -> None:
        self.response.close()
        self.connection.close()


def _follow(url: str, deadline: float, timeout_s: float) -> _Fetched:
    """GET the URL, following up to MAX_REDIRECTS redirects, each judged anew."""
    for _ in range(MAX_REDIRECTS + 1):
        fetched = _get(url, deadline, timeout_s)
        location = fetched.response.getheader("Location")
        if fetched.response.status not in REDIRECT_STATUSES or not location:
            return fetched
        fetched.close()
        url = _redirect_target(url, location)
    raise CheckFailed(f"{url}: more than {MAX_REDIRECTS} redirects")


def _redirect_target(url: str, location: str) -> str:
    target = urljoin(url, location.strip())
    scheme = urlsplit(target).scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise CheckFailed(f"redirected to a {scheme or 'relative'} URL: {target}")
    try:
        validate_url(target)
    except ValueError as exc:
        raise AddressRefused(f"redirected to {target}: {exc}") from None
    return target


def _get(url: str, deadline: float, timeout_s: float) -> _Fetched:
    parts = _split(url)
    https = parts.scheme.lower() == "https"
    port = parts.port or (443 if https else 80)
    addresses = vetted_addresses(parts.hostname, port)
    remaining = max(deadline - time.monotonic(), 0.001)
    connection = _pinned_connection(parts.hostname, port, addresses, remaining, https)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request("GET", path, headers=HEADERS)
        return _Fetched(url, connection, connection.getresponse())
    except TimeoutError:
        connection.close()
        raise CheckFailed(f"{url}: no response within {timeout_s:g} s") from None
    except http.client.InvalidURL as exc:
        connection.close()
        raise CheckFailed(f"{url}: {exc}") from None
    except (OSError, http.client.HTTPException) as exc:
        connection.close()
        raise CheckUnreachable(f"{url}: {exc!r}") from exc


def _pinned_connection(
    host: str, port: int, addresses: list[str], timeout: float, https: bool
) -> http.client.HTTPConnection:
    """A connection that speaks to `host` (Host header, TLS name and certificate) but
    connects only to the vetted `addresses`, never resolving the name again."""
    kind = http.client.HTTPSConnection if https else http.client.HTTPConnection
    connection = kind(host, port, timeout=timeout)

    def connect_vetted(_address, timeout=None, source_address=None):
        return _connect_first(addresses, port, timeout)

    connection._create_connection = connect_vetted
    return connection


def _connect_first(addresses: list[str], port: int, timeout: float | None) -> socket.socket:
    error: OSError | None = None
    for address in addresses:
        try:
            return socket.create_connection((address, port), timeout)
        except TimeoutError:
            raise
        except OSError as exc:
            error = exc
    raise error or OSError(f"no address to connect to on port {port}")


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
                raise CheckFailed(f"body not received within {timeout_s:g} s")
    except TimeoutError:
        raise CheckFailed(f"body not received within {timeout_s:g} s") from None
    except (ConnectionError, http.client.HTTPException) as exc:
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
