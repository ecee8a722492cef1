"""The whole URL map, walked: who may reach each view, and CSRF on every state change.

Personas: nobody (anonymous); alice may run `add` and started a run; bob is staff but
may run nothing, so alice's run is not his to see; root is a superuser.
"""

import pytest
from django.test import Client
from django_celery_results.models import TaskResult

from tests.api.helpers import ADD, make_run, token_client
from tests.helpers import make_superuser, make_user

from .urlmap import Route, all_routes

pytestmark = pytest.mark.django_db

# Reachable without logging in, and why.
PUBLIC = {
    "login": "the site's sign-in form, for any active user",
    "logout": "signing out (POST)",
    "admin:login": "the admin's login form, for staff",
    "admin:logout": "logging out of the admin (POST)",
    "ops:healthz": "liveness probe",
    "ops:readyz": "readiness probe",
}
# Where anonymous visitors are sent: pages for anyone signed in (login_required) to the
# site's sign-in, staff pages (the admin, staff_member_required) to the admin's login.
LOGIN_PAGES = ("/accounts/login/", "/admin/login/")
# Refused to anonymous callers from elsewhere than METRICS_ALLOWED_IPS (401/403).
NETWORK_OR_TOKEN = {"ops:metrics"}
# Patterns an earlier pattern answers for: their view is never reached.
SHADOWED = {
    "api:api-root": "ninja's default root; /api/ is answered by api:api_root",
    "api:set_rate_limit": "PUT on api:get_rate_limit's path: one ninja view answers both",
}
OUTSIDE = "203.0.113.9"  # TEST-NET-3: not an allowed metrics address
# Routes that name one run; bob must learn nothing through any of them.
RUN_PARAMETERS = {"pk", "run_id"}


@pytest.fixture
def alices_run():
    alice = make_user("alice", jobs=(ADD,))
    return make_run(requested_by=alice, requested_by_label="alice-secret-label")


def reachable_routes(run_pk: int) -> list[Route]:
    routes = [route for route in all_routes() if route.name not in SHADOWED]
    assert {r.name for r in all_routes()} - {r.name for r in routes} == set(SHADOWED)
    assert all(route.resolves_to_itself(run_pk) for route in routes)
    return routes


def anonymous_response(client: Client, path: str):
    """GET, or POST where the view accepts only POST."""
    response = client.get(path, REMOTE_ADDR=OUTSIDE)
    if response.status_code == 405:
        response = client.post(path, REMOTE_ADDR=OUTSIDE)
    return response


def test_the_walk_covers_every_app_the_admin_and_the_api(alices_run):
    names = {route.name for route in reachable_routes(alices_run.pk)}
    prefixes = {name.split(":")[0] for name in names}
    assert {"admin", "api", "jobs", "ops", "reports", "scheduling"} <= prefixes
    assert len(names) > 100


def test_anonymous_visitors_are_sent_to_log_in_and_api_callers_get_401(alices_run):
    client = Client()
    wrong = {}
    for route in reachable_routes(alices_run.pk):
        path = route.path(alices_run.pk)
        response = anonymous_response(client, path)
        status, location = response.status_code, response.get("Location", "")
        if route.name in PUBLIC:
            ok = status != 500  # /readyz answers 503 while a dependency is down
        elif route.name in NETWORK_OR_TOKEN:
            ok = status in (401, 403)
        elif path.startswith("/api/"):
            ok = status == 401 and response["Content-Type"] == "application/json"
        else:
            ok = status == 302 and location.startswith(LOGIN_PAGES)
        if not ok:
            wrong[route.name] = (path, status, location)
    assert wrong == {}


def test_a_user_who_may_not_see_a_run_gets_403_or_404_from_every_url_naming_it(alices_run):
    bob = make_user("bob")
    TaskResult.objects.create(task_id=alices_run.task_id, status="SUCCESS", result="42")
    result_pk = TaskResult.objects.get(task_id=alices_run.task_id).pk
    session, token = Client(), token_client(bob)
    session.force_login(bob)
    paths = [route.path(alices_run.pk) for route in reachable_routes(alices_run.pk)
             if route.parameters & RUN_PARAMETERS]  # fmt: skip
    paths += [f"/admin/jobs/run/{alices_run.pk}/change/",
              f"/admin/jobs/run/{alices_run.pk}/history/",
              f"/admin/django_celery_results/taskresult/{result_pk}/change/"]  # fmt: skip
    assert len(paths) >= 10
    leaks = {}
    for path in paths:
        client = token if path.startswith("/api/") else session
        for method in (client.get, client.post):
            response = method(path)
            body = response.content.decode(errors="replace")
            if response.status_code not in (403, 404, 405) or alices_run.task_id in body:
                leaks[f"{method.__name__.upper()} {path}"] = response.status_code
    assert leaks == {}


def test_pages_listing_runs_show_a_user_nothing_of_runs_they_may_not_see(alices_run):
    bob = make_user("bob")
    session, token = Client(), token_client(bob)
    session.force_login(bob)
    pages = ["/", "/runs/", "/jobs/", "/admin/", "/admin/jobs/run/",
             *[f"/dashboard/{part}/" for part in ("runs", "failures", "health")]]  # fmt: skip
    bodies = [session.get(page).content.decode() for page in pages]
    bodies += [token.get("/api/runs").content.decode(), token.get("/api/jobs").content.decode()]
    for secret in (alices_run.task_id, "alice-secret-label"):
        assert not any(secret in body for body in bodies)


def test_every_post_without_a_csrf_token_is_refused(alices_run):
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_superuser())
    accepted = {}
    for route in reachable_routes(alices_run.pk):
        path = route.path(alices_run.pk)
        methods = ("post", "put", "patch", "delete") if path.startswith("/api/") else ("post",)
        for method in methods:
            status = getattr(client, method)(path, REMOTE_ADDR=OUTSIDE).status_code
            # 403: refused for CSRF; 405: the view changes nothing on this method;
            # 404 only from the API's catch-all for unknown endpoints.
            refused = status in (403, 405) or (route.name == "api:no_such_endpoint"
                                               and status == 404)  # fmt: skip
            if not refused:
                accepted[f"{method.upper()} {path}"] = status
    assert accepted == {}


def test_the_same_post_with_the_csrf_token_goes_through():
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_superuser())
    token = client.get("/admin/").cookies  # the admin index sets the csrftoken cookie
    csrf = token["csrftoken"].value
    response = client.post("/admin/logout/", {"csrfmiddlewaretoken": csrf})
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


API_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "PROPFIND")


def test_every_api_route_answers_a_method_it_does_not_take_with_a_json_405(alices_run):
    callers = {"root": token_client(make_superuser()), "nobody": Client()}
    not_allowed, wrong = 0, {}
    for route in reachable_routes(alices_run.pk):
        path = route.path(alices_run.pk)
        if not path.startswith("/api/"):
            continue
        for who, client in callers.items():
            for method in API_METHODS:
                response = client.generic(method, path)
                if response.status_code != 405:
                    continue
                not_allowed += 1
                if not says_what_it_takes(response, method):
                    wrong[f"{who} {method} {path}"] = response.content[:80]
    assert wrong == {}
    assert not_allowed > 100  # every route has methods it does not take


def says_what_it_takes(response, method: str) -> bool:
    """JSON naming each method of the Allow header (a HEAD answer has no body)."""
    allowed = [m.strip() for m in response.get("Allow", "").split(",") if m.strip()]
    if not allowed or method in allowed:
        return False
    if not response["Content-Type"].startswith("application/json"):
        return False
    detail = response.json()["detail"] if method != "HEAD" else " ".join(allowed)
    return all(m in detail for m in allowed)


def test_a_405_from_the_api_names_the_methods_it_takes():
    client = token_client(make_superuser())
    response = client.post(f"/api/jobs/{ADD}/rate-limit")
    assert response.status_code == 405
    assert response["Allow"] == "GET, PUT"
    assert response.json() == {
        "detail": "Method POST not allowed here; this endpoint takes GET, PUT.",
        "errors": {},
    }
    assert client.delete("/api/runs").json()["detail"].endswith("takes GET.")
