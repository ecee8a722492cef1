"""A local HTTP server with one path per behaviour an HTTP check must handle."""

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from project.settings import hosts_and_networks

BIG_BODY = b"x" * 1_500_000 + b"needle"


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.server.seen.append((self.path, self.headers.get("Host")))
        route = getattr(self, "route_" + self.path.strip("/").replace("-", "_"), None)
        if route is None:
            self.reply(404, b"not found")
        else:
            route()

    def reply(self, status: int, body: bytes, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def route_ok(self):
        self.reply(200, b"hello from switchyard", {"Content-Type": "text/plain; charset=utf-8"})

    def route_server_error(self):
        self.reply(500, b"it broke")

    def route_redirect(self):
        self.reply(302, b"", {"Location": "/ok"})

    def route_redirect_to_ftp(self):
        self.reply(302, b"", {"Location": "ftp://127.0.0.1/secret"})

    def route_secret(self):
        self.reply(200, b"the secret is 42")

    def route_redirect_to_loopback(self):
        self.reply(302, b"", {"Location": f"http://127.0.0.1:{self.server.port}/secret"})

    def route_redirect_to_mapped(self):
        self.reply(302, b"", {"Location": f"http://[::ffff:127.0.0.1]:{self.server.port}/secret"})

    def route_redirect_to_decimal(self):
        self.reply(307, b"", {"Location": f"http://2130706433:{self.server.port}/secret"})

    def route_redirect_to_localhost(self):
        self.reply(301, b"", {"Location": f"http://localhost:{self.server.port}/secret"})

    def route_redirect_loop(self):
        self.reply(302, b"", {"Location": "/redirect-loop"})

    def route_slow_headers(self):
        time.sleep(3)
        self.reply(200, b"late")

    def route_slow_body(self):
        """Headers at once, then the body stalls longer than the timeout."""
        self.send_response(200)
        self.send_header("Content-Length", "100")
        self.end_headers()
        self.wfile.write(b"first ten.")
        self.wfile.flush()
        time.sleep(3)
        self.wfile.write(b"." * 90)

    def route_trickle(self):
        """Never silent for long, but the whole body takes far longer than the timeout."""
        self.send_response(200)
        self.send_header("Content-Length", "30")
        self.end_headers()
        for _ in range(30):
            self.wfile.write(b".")
            self.wfile.flush()
            time.sleep(0.1)

    def route_big(self):
        self.reply(200, BIG_BODY)

    def log_message(self, *args) -> None:
        pass


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.port = self.server_address[1]
        self.seen: list[tuple[str, str]] = []  # (path, Host header) of each request

    def handle_error(self, request, client_address) -> None:
        pass  # clients that time out hang up on purpose


@pytest.fixture(scope="session")
def local_server() -> QuietServer:
    server = QuietServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def http_server(local_server) -> str:
    local_server.seen.clear()
    return f"http://127.0.0.1:{local_server.port}"


def allowed_hosts(*entries: str) -> list:
    """HTTP_CHECK_ALLOWED_HOSTS as the settings read it from the environment."""
    return hosts_and_networks("HTTP_CHECK_ALLOWED_HOSTS", list(entries))


@pytest.fixture
def allow_loopback(settings) -> None:
    """Checks of the local test server: 127.0.0.1 is internal, so it must be allowed."""
    settings.HTTP_CHECK_ALLOWED_HOSTS = allowed_hosts("127.0.0.1")
