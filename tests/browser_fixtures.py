"""Playwright with Debian's chromium, for the tests a person would do in a browser.

Import these fixtures in a test package's conftest.py:
    from tests.browser_fixtures import *  # noqa: F403
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]  # fmt: skip


def chromium_binary() -> str | None:
    """The real binary of Debian's chromium package (the one on PATH is a wrapper)."""
    for candidate in (Path("/usr/lib/chromium/chromium"),):
        if candidate.exists():
            return str(candidate)
    if shutil.which("dpkg"):
        listing = subprocess.run(["dpkg", "-L", "chromium"], capture_output=True, text=True)
        for line in listing.stdout.splitlines():
            if line.endswith("/chromium") and "/lib/" in line and Path(line).is_file():
                return line
    return None


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    binary = chromium_binary()
    if binary is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    # Playwright's sync API runs an event loop in this thread; Django's ORM calls made
    # by the test itself between page actions are still synchronous.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    return {**browser_type_launch_args, "executable_path": binary, "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def live_server(request):
    """pytest-django's live server, speaking plain HTTP.

    SecurityMiddleware reads SECURE_SSL_REDIRECT once, when the server thread builds
    its handler: that happens before the per-test settings fixture turns it off.
    """
    from django.test import override_settings
    from pytest_django.live_server_helper import LiveServer

    addr = request.config.getvalue("liveserver") or "localhost"
    with override_settings(SECURE_SSL_REDIRECT=False):
        server = LiveServer(addr)
    yield server
    server.stop()


def login(page, live_server, username: str, password: str = "pw") -> None:
    page.goto(f"{live_server.url}/admin/login/?next=/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_load_state()
