"""The API's URLs: ninja's, each view answering a method it does not take in JSON.

Ninja answers such a request itself, before any handler of the API's, with an HTML
"Method not allowed"; every other error of the API is JSON (apps/api/api.py).
"""

from functools import wraps

from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.urls import URLPattern, path

from .api import api, error_response

METHOD_ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def method_not_allowed(request: HttpRequest, allowed: str) -> HttpResponse:
    """A 405 in the API's shape, naming the methods the endpoint takes (also in Allow)."""
    methods = sorted({m.strip() for m in allowed.split(",") if m.strip()}, key=_method_rank)
    takes = ", ".join(methods)
    detail = f"Method {request.method[:20]} not allowed here; this endpoint takes {takes}."
    response = error_response(request, 405, detail)
    response["Allow"] = takes
    return response


def _method_rank(method: str) -> tuple[int, str]:
    return (METHOD_ORDER.index(method) if method in METHOD_ORDER else len(METHOD_ORDER), method)


def json_405(pattern: URLPattern) -> URLPattern:
    view = pattern.callback

    @wraps(view)  # keeps csrf_exempt and ninja's attributes
    def answer_405_in_json(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        if isinstance(response, HttpResponseNotAllowed):
            return method_not_allowed(request, response["Allow"])
        return response

    return URLPattern(pattern.pattern, answer_405_in_json, pattern.default_args, pattern.name)


def api_urls():
    patterns, app, namespace = api.urls
    return [json_405(pattern) for pattern in patterns], app, namespace


urlpatterns = [path("", api_urls())]
