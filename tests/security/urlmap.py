"""Every URL pattern of the site, each with a sample path that resolves back to it.

The walk is recursive (admin, the API, every app), so a view added tomorrow is checked
by the security tests without anyone listing it.
"""

import re
from dataclasses import dataclass

from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.resolvers import RegexPattern

# A sample value per parameter name, else per converter; "{run}" is a run's id.
NAME_SAMPLES = {"pk": "{run}", "run_id": "{run}", "url": "no-such-page/",
                "rest": "no-such-endpoint"}  # fmt: skip
CONVERTER_SAMPLES = {"int": "{run}", "str": "apps.demo.tasks.add", "slug": "runs", "path": "1",
                     "uuid": "00000000-0000-0000-0000-000000000000"}  # fmt: skip
ROUTE_PARAMETER = re.compile(r"<(?:(?P<converter>\w+):)?(?P<name>\w+)>")
REGEX_GROUP = re.compile(r"\(\?P<(?P<name>\w+)>(?P<body>[^)]*)\)")


@dataclass(frozen=True)
class Route:
    name: str  # "namespace:name" ("name" at the top level), else the pattern text
    template: str  # the path with its parameters still in it
    callback: object

    def path(self, run_pk: int) -> str:
        return "/" + fill(self.template).replace("{run}", str(run_pk))

    @property
    def parameters(self) -> set[str]:
        names = {m["name"] for m in ROUTE_PARAMETER.finditer(self.template)}
        return names | {m["name"] for m in REGEX_GROUP.finditer(self.template)}

    def resolves_to_itself(self, run_pk: int) -> bool:
        return resolve(self.path(run_pk)).func == self.callback


def fill(template: str) -> str:
    def route_value(match: re.Match) -> str:
        return NAME_SAMPLES.get(match["name"]) or CONVERTER_SAMPLES[match["converter"] or "str"]

    def group_value(match: re.Match) -> str:
        # A named group: a sample by name, else the first of an alternation of names.
        return NAME_SAMPLES.get(match["name"]) or match["body"].split("|")[0]

    return ROUTE_PARAMETER.sub(route_value, REGEX_GROUP.sub(group_value, template))


def all_routes() -> list[Route]:
    return list(_walk(get_resolver().url_patterns, "", ""))


def _walk(patterns, prefix: str, namespace: str):
    for entry in patterns:
        text = prefix + _text(entry.pattern)
        if isinstance(entry, URLResolver):
            inner = ":".join(filter(None, [namespace, entry.namespace]))
            yield from _walk(entry.url_patterns, text, inner)
        elif isinstance(entry, URLPattern):
            name = ":".join(filter(None, [namespace, entry.name])) if entry.name else text
            yield Route(name=name, template=text, callback=entry.callback)


def _text(pattern) -> str:
    text = str(pattern)
    if isinstance(pattern, RegexPattern):
        text = text.removeprefix("^").removesuffix("$")
    return text
