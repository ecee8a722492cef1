"""Run by `manage.py shell` under production settings (tests/security/test_headers.py):
answer a real request over HTTPS and one over HTTP, and print what a browser would get."""

import json

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client

HOST = "example.com"


def cookie_flags(response, name: str) -> dict:
    cookie = response.cookies[name]
    return {"secure": bool(cookie["secure"]), "httponly": bool(cookie["httponly"]),
            "samesite": cookie["samesite"]}  # fmt: skip


def probe() -> None:
    call_command("migrate", verbosity=0)
    get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client = Client(HTTP_HOST=HOST)
    page = client.get("/admin/login/", secure=True)
    login = client.post("/admin/login/", {"username": "root", "password": "pw"}, secure=True)
    plain = Client(HTTP_HOST=HOST).get("/admin/login/")
    probe_over_http = Client(HTTP_HOST=HOST).get("/healthz")
    print(json.dumps({
        "headers": {name: page.get(name) for name in (
            "Strict-Transport-Security", "X-Frame-Options", "X-Content-Type-Options",
            "Referrer-Policy", "Cross-Origin-Opener-Policy")},
        "csrf_cookie": cookie_flags(page, "csrftoken"),
        "login_status": login.status_code,
        "session_cookie": cookie_flags(login, "sessionid"),
        "http": [plain.status_code, plain.get("Location")],
        "healthz_over_http": probe_over_http.status_code,
    }))  # fmt: skip
