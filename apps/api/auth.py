"""Who is calling: a bearer token (scripts) or a Django session with CSRF (the browser).

Anonymous callers get 401, never a redirect to the login page.
"""

import functools

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from ninja.errors import HttpError
from ninja.security import APIKeyCookie, HttpBearer
from ninja.utils import check_csrf

from .models import ApiToken

UNAUTHORIZED = "Authentication required: send 'Authorization: Bearer <token>' or log in."


class TokenAuth(HttpBearer):
    """`Authorization: Bearer <token>`, a token created in the admin."""

    def authenticate(self, request: HttpRequest, token: str):
        user = ApiToken.user_for(token)
        if user is not None:
            request.user = user
        return user


class SessionAuth(APIKeyCookie):
    """The browser's Django session. Unsafe methods need the CSRF token (X-CSRFToken).

    CSRF is checked only once a session user is found, so an anonymous POST gets 401,
    not ninja's stock 403.
    """

    param_name = settings.SESSION_COOKIE_NAME

    def _get_key(self, request: HttpRequest) -> str | None:
        return request.COOKIES.get(self.param_name)  # ninja's version checks CSRF first

    def authenticate(self, request: HttpRequest, key: str | None):
        user = request.user
        if not (user.is_authenticated and user.is_active):
            return None
        if check_csrf(request):
            raise HttpError(403, "CSRF check failed: send the csrftoken cookie as X-CSRFToken.")
        return user


token_auth = TokenAuth()
session_auth = SessionAuth()


def api_user(request: HttpRequest):
    """The caller, authenticated the way the API does, for views outside ninja."""
    return token_auth(request) or session_auth(request)


def unauthorized() -> JsonResponse:
    response = JsonResponse({"detail": UNAUTHORIZED, "errors": {}}, status=401)
    response["WWW-Authenticate"] = 'Bearer realm="switchyard"'
    return response


def docs_access(view):
    """openapi.json is for callers of the API: 401 to anonymous ones, like every endpoint."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        if api_user(request):
            return view(request, *args, **kwargs)
        return unauthorized()

    return wrapper
