"""http_check is no window into the internal network: internal addresses are refused at
submission when written as a number, at connect time when a name resolves to one, and on
every redirect; HTTP_CHECK_ALLOWED_HOSTS opens exactly what it lists.

Only loopback is ever contacted: names that resolve elsewhere are faked by patching the
resolver, which is what the decision under test reads."""

import json
import socket
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from apps.checks.http import (
    AddressRefused,
    CheckFailed,
    CheckUnreachable,
    http_check,
    internal_reason,
)
from apps.jobs.models import Run
from tests.api.helpers import token_client
from tests.checks.conftest import allowed_hosts
from tests.helpers import make_superuser

HTTP_CHECK = "apps.checks.tasks.http_check"
# Internal addresses written as literals, each in a form some resolver accepts.
LITERALS = [
    "http://127.0.0.1:{port}/secret",
    "http://[::ffff:127.0.0.1]/",
    "http://2130706433/",
    "http://0x7f000001/",
    "http://0177.0.0.1/",
    "http://127.1/",
    "http://[::1]/",
    "http://[::127.0.0.1]/",
    "http://[64:ff9b::7f00:1]/",
    "http://[2002:7f00:1::]/",
    "http://0.0.0.0/",
    "http://[::]/",
    "http://10.0.0.1/",
    "http://172.16.0.1/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fe80::1]/",
    "http://[fc00::1]/",
    "http://224.0.0.1/",
    "http://255.255.255.255/",
    "https://[::ffff:a00:1]/",
    "http://[::ffff:7f00:1]/",
    "http://[::1%25lo]/",
    "http://0/",
    "http://0x7f.1/",
    "http://\u2460\u2461\u2466.0.0.1/",  # circled digits: IDNA reads them as 127.0.0.1
]


@pytest.fixture
def port(local_server) -> int:
    local_server.seen.clear()
    return local_server.port


def api_post(url: str, **extra):
    client = token_client(make_superuser())
    body = json.dumps({"parameters": {"url": url, **extra}})
    return client.post(f"/api/jobs/{HTTP_CHECK}/runs", body, content_type="application/json")


# At submission: literal addresses --------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("url", LITERALS)
def test_the_api_refuses_an_internal_literal_with_422_naming_the_url(url, port):
    response = api_post(url.format(port=port), contains="secret")
    assert response.status_code == 422
    (message,) = response.json()["errors"]["url"]
    assert "which HTTP checks may not reach unless HTTP_CHECK_ALLOWED_HOSTS lists it" in message
    assert not Run.objects.exists()


@pytest.mark.django_db
def test_the_web_form_refuses_an_internal_literal_with_an_error_on_the_url(port):
    client = Client()
    client.force_login(make_superuser())
    data = {"url": "http://2130706433/", "expect_status": "200", "timeout_s": "10"}
    response = client.post(f"/jobs/{HTTP_CHECK}/", data)
    assert response.status_code == 200
    (error,) = response.context["form"].errors["url"]
    assert error.startswith("2130706433 is a loopback address (127.0.0.1)")
    assert not Run.objects.exists()


@pytest.mark.django_db
def test_the_cli_refuses_an_internal_literal_with_exit_2():
    with pytest.raises(CommandError) as refused:
        call_command(
            "jobs", "run", HTTP_CHECK, "url=http://[::ffff:127.0.0.1]/", stdout=StringIO()
        )
    assert refused.value.returncode == 2
    assert str(refused.value).startswith(
        "url: ::ffff:127.0.0.1 is an IPv6 form of an IPv4 address"
    )
    assert not Run.objects.exists()


@pytest.mark.parametrize("url", LITERALS)
def test_the_function_itself_refuses_each_literal(url, port):
    with pytest.raises(ValueError, match="may not reach"):
        http_check(url.format(port=port))


@pytest.mark.parametrize("address", ["8.8.8.8", "2606:4700:4700::1111", "93.184.216.34"])
def test_public_addresses_are_not_internal(address):
    import ipaddress

    assert internal_reason(ipaddress.ip_address(address)) is None


# At connect time: names ----------------------------------------------------------------


def test_a_name_that_resolves_to_loopback_is_refused_before_anything_is_sent(local_server, port):
    with pytest.raises(AddressRefused, match=r"localhost is a loopback address \(127\.0\.0\.1\)"):
        http_check(f"http://localhost:{port}/secret", contains="42")
    assert local_server.seen == []


def test_a_name_refused_if_any_of_its_addresses_is_internal(monkeypatch, local_server, port):
    monkeypatch.setattr("apps.checks.http.resolve", lambda host, port: ["8.8.8.8", "10.1.2.3"])
    with pytest.raises(AddressRefused, match=r"internal\.example is a private address"):
        http_check(f"http://internal.example:{port}/secret")


def test_a_name_is_resolved_once_and_the_connection_goes_to_the_address_judged(
    monkeypatch, settings, local_server, port
):
    """DNS rebinding: a second lookup would answer 127.0.0.2, where nothing listens and
    which is not allowed. The check must use the first, judged answer."""
    settings.HTTP_CHECK_ALLOWED_HOSTS = allowed_hosts("127.0.0.1")
    real_getaddrinfo, lookups = socket.getaddrinfo, []

    def rebinding(host, *args, **kwargs):
        if host != "rebind.example":
            return real_getaddrinfo(host, *args, **kwargs)
        if kwargs.get("flags", 0) & socket.AI_NUMERICHOST:
            raise socket.gaierror(socket.EAI_NONAME, "not a numeric host")
        lookups.append(host)
        address = "127.0.0.1" if len(lookups) == 1 else "127.0.0.2"
        return real_getaddrinfo(address, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    result = http_check(f"http://rebind.example:{port}/secret", contains="42")
    assert result["contained"] is True
    assert lookups == ["rebind.example"]
    assert local_server.seen == [("/secret", f"rebind.example:{port}")]


def test_a_rebinding_answer_that_turns_internal_is_refused(monkeypatch, local_server, port):
    monkeypatch.setattr("apps.checks.http.resolve", lambda host, port: ["127.0.0.1"])
    with pytest.raises(AddressRefused, match=r"public\.example is a loopback address"):
        http_check(f"http://public.example:{port}/secret")
    assert local_server.seen == []


# Redirects -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("route", "target"),
    [
        ("redirect-to-loopback", "127.0.0.1"),
        ("redirect-to-mapped", "::ffff:127.0.0.1"),
        ("redirect-to-decimal", "2130706433"),
    ],
)
def test_a_redirect_from_an_allowed_host_to_an_internal_literal_is_refused(
    settings, local_server, port, route, target
):
    settings.HTTP_CHECK_ALLOWED_HOSTS = allowed_hosts("localhost")
    with pytest.raises(AddressRefused, match=f"redirected to .*{target}"):
        http_check(f"http://localhost:{port}/{route}", contains="42")
    assert [path for path, _ in local_server.seen] == [f"/{route}"]


def test_a_redirect_to_a_name_that_resolves_internal_is_refused(
    monkeypatch, settings, local_server, port
):
    settings.HTTP_CHECK_ALLOWED_HOSTS = allowed_hosts("start.example")
    monkeypatch.setattr("apps.checks.http.resolve", lambda host, port: ["127.0.0.1"])
    with pytest.raises(AddressRefused, match=r"localhost is a loopback address"):
        http_check(f"http://start.example:{port}/redirect-to-localhost", contains="42")
    assert [path for path, _ in local_server.seen] == ["/redirect-to-localhost"]


def test_redirects_are_followed_at_most_ten_times(settings, local_server, port):
    settings.HTTP_CHECK_ALLOWED_HOSTS = allowed_hosts("127.0.0.1")
    with pytest.raises(CheckFailed, match="more than 10 redirects"):
        http_check(f"http://127.0.0.1:{port}/redirect-loop")
    assert len(local_server.seen) == 11


# The allow-list ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("allowed", "host"),
    [
        (["localhost"], "localhost"),
        (["LOCALHOST."], "localhost"),
        (["127.0.0.1"], "127.0.0.1"),
        (["127.0.0.0/8"], "127.0.0.1"),
        (["127.0.0.0/8"], "localhost"),
    ],
)
def test_an_allowed_host_or_network_may_be_checked(settings, port, allowed, host):
    settings.HTTP_CHECK_ALLOWED_HOSTS = allowed_hosts(*allowed)
    assert http_check(f"http://{host}:{port}/secret", contains="42")["contained"] is True


@pytest.mark.django_db
def test_an_allowed_internal_address_is_accepted_at_submission(settings, port):
    settings.HTTP_CHECK_ALLOWED_HOSTS = allowed_hosts("127.0.0.0/8")
    assert api_post(f"http://127.0.0.1:{port}/ok").status_code == 201


def test_allowing_one_name_does_not_allow_its_address_under_another_name(settings, port):
    settings.HTTP_CHECK_ALLOWED_HOSTS = allowed_hosts("localhost")
    with pytest.raises(ValueError, match=r"127\.0\.0\.1 is a loopback address"):
        http_check(f"http://127.0.0.1:{port}/secret")


# HTTPS to the pinned address -----------------------------------------------------------


@pytest.fixture
def tls_server(tmp_path):
    """An HTTPS server on 127.0.0.1 with a certificate for `localhost`, recording SNI."""
    import shutil
    import ssl
    import subprocess
    import threading

    from tests.checks.conftest import Handler, QuietServer

    if not shutil.which("openssl"):
        pytest.skip("the openssl command makes the test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", key, "-out", cert, "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost"],
                   check=True, capture_output=True)  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = QuietServer(("127.0.0.1", 0), Handler)
    server.names = []
    context.sni_callback = lambda sock, name, ctx: server.names.append(name)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server, cert
    server.shutdown()
    server.server_close()


def test_https_keeps_the_name_for_sni_and_the_certificate(monkeypatch, settings, tls_server):
    import ssl

    server, cert = tls_server
    settings.HTTP_CHECK_ALLOWED_HOSTS = allowed_hosts("localhost")
    url = f"https://localhost:{server.port}/ok"
    with pytest.raises(CheckUnreachable, match="CERTIFICATE_VERIFY_FAILED"):
        http_check(url)  # the test certificate is not trusted by default
    trusted = ssl.create_default_context(cafile=str(cert))
    monkeypatch.setattr(ssl, "_create_default_https_context", lambda: trusted)
    assert http_check(url, contains="hello")["contained"] is True
    assert server.names == ["localhost", "localhost"]
    assert server.seen == [("/ok", f"localhost:{server.port}")]
