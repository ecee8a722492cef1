"""Refuse a NUL character in a query string, before any view reads it.

PostgreSQL text cannot hold NUL, and the admin turns any `?field=value` into a query:
one `%00` was a DataError, a 500, on every change list. Forms already refuse NUL in
posted text (Django's ProhibitNullCharactersValidator); this covers query strings.
The API keeps its own answer, a 422 naming the parameter (apps.api.schemas.NO_NUL).
"""

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest

API_ROUTE = "api/"


class RefuseNulInQueryMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs):
        if request.resolver_match.route.startswith(API_ROUTE) or not has_nul(request.GET):
            return None
        return HttpResponseBadRequest(
            "Refused: the query string contains a NUL character (%00).\n",
            content_type="text/plain",
        )


def has_nul(query) -> bool:
    return any("\x00" in key or any("\x00" in v for v in values) for key, values in query.lists())
