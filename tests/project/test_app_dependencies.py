"""The apps depend on each other one way only (docs/architecture.md draws the arrows).

Every Python import under apps/<app>/ is read with `ast` (module level and inside
functions, relative imports resolved), and so is every template's use of another app
(`{% load %}` of its tag library, `{% extends %}`/`{% include %}` of its templates,
`{% url %}` of its namespace). Each use of another app must be one the table below
allows. apps.jobs is the core and uses no other app; nothing uses apps.ops, the top of
the site.
"""

import ast
import re
from pathlib import Path

import pytest

APPS_DIR = Path(__file__).resolve().parents[2] / "apps"

ALLOWED = {
    "jobs": set(),
    "devstack": set(),
    "audit": {"jobs"},
    "scheduling": {"jobs", "audit"},
    "api": {"jobs", "audit", "control"},
    "djtasks": {"jobs"},
    "reports": {"jobs"},
    "maintenance": {"jobs"},
    "checks": {"jobs"},
    "demo": {"jobs", "pipelines"},
    "pipelines": {"jobs"},
    "control": {"jobs", "audit"},
    "ops": {"jobs", "scheduling", "control"},
}


def app_names() -> list[str]:
    return sorted(p.name for p in APPS_DIR.iterdir() if (p / "__init__.py").exists())


def module_name(path: Path) -> str:
    parts = path.relative_to(APPS_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in the file."""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *(node.module or "").split(".")]).strip(".")
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return found


def app_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "apps" else None


def forbidden_imports(app: str) -> list[str]:
    allowed = ALLOWED[app] | {app}
    problems = []
    for path in sorted((APPS_DIR / app).rglob("*.py")):
        for line, module in imported_modules(path):
            other = app_of(module)
            if other is not None and other not in allowed:
                problems.append(f"{path.relative_to(APPS_DIR.parent)}:{line} imports {module}")
    return problems


LOAD = re.compile(r"{%\s*load\s+([^%]+?)\s*%}")
TEMPLATE = re.compile(r"{%\s*(?:extends|include)\s+[\"']([^/\"']+)/")
URL = re.compile(r"{%\s*url\s+[\"']([\w-]+):")


def template_owners() -> dict[str, dict[str, str]]:
    """Which app owns each tag library, template folder and URL namespace."""
    owners: dict[str, dict[str, str]] = {"load": {}, "template": {}, "url": {}}
    for app in app_names():
        root = APPS_DIR / app
        for library in (root / "templatetags").glob("*.py"):
            owners["load"][library.stem] = app
        for folder in (root / "templates").glob("*/"):
            owners["template"][folder.name] = app
        urls = root / "urls.py"
        found = (
            re.search(r'^app_name = "(\w+)"', urls.read_text(), re.M) if urls.exists() else None
        )
        if found:
            owners["url"][found.group(1)] = app
    owners["template"].pop("admin", None)  # Django's admin templates, overridden by several
    return owners


def template_uses(path: Path) -> list[tuple[str, str]]:
    text = path.read_text()
    loads = [name for names in LOAD.findall(text) for name in names.split()]
    return ([("load", name) for name in loads]
            + [("template", name) for name in TEMPLATE.findall(text)]
            + [("url", name) for name in URL.findall(text)])  # fmt: skip


def forbidden_template_uses(app: str) -> list[str]:
    allowed, owners, problems = ALLOWED[app] | {app}, template_owners(), []
    for path in sorted((APPS_DIR / app / "templates").rglob("*.html")):
        for kind, name in template_uses(path):
            other = owners[kind].get(name)
            if other is not None and other not in allowed:
                shown = path.relative_to(APPS_DIR.parent)
                problems.append(f"{shown} uses {other} ({kind} {name})")
    return problems


def test_every_app_has_a_row_in_the_table():
    assert set(app_names()) == set(ALLOWED)


@pytest.mark.parametrize("app", sorted(ALLOWED))
def test_the_app_imports_only_the_apps_below_it(app):
    assert forbidden_imports(app) == []


@pytest.mark.parametrize("app", sorted(ALLOWED))
def test_the_app_templates_use_only_the_apps_below_it(app):
    assert forbidden_template_uses(app) == []


def test_nothing_imports_ops():
    assert all("ops" not in below for below in ALLOWED.values() if below is not ALLOWED["ops"])


def test_the_table_has_no_cycles():
    def reaches(start: str, seen: frozenset = frozenset()) -> set[str]:
        below = ALLOWED[start]
        return below | {app for other in below - seen for app in reaches(other, seen | {start})}

    assert all(app not in reaches(app) for app in ALLOWED)


def test_the_reader_finds_a_forbidden_import_inside_a_function(tmp_path, monkeypatch):
    """The check itself: an import tucked into a function, relative or not, is seen."""
    fake = tmp_path / "apps" / "jobs" / "sub"
    fake.mkdir(parents=True)
    for folder in (tmp_path / "apps", fake.parent, fake):
        (folder / "__init__.py").write_text("")
    (fake / "views.py").write_text(
        "def page():\n    from ...ops.inspect import snapshot\n    import apps.scheduling\n"
    )
    monkeypatch.setattr(__import__(__name__, fromlist=["x"]), "APPS_DIR", tmp_path / "apps")
    assert forbidden_imports("jobs") == [
        "apps/jobs/sub/views.py:2 imports apps.ops.inspect.snapshot",
        "apps/jobs/sub/views.py:3 imports apps.scheduling",
    ]


def test_the_reader_finds_a_template_that_loads_another_apps_tags(tmp_path, monkeypatch):
    apps_dir = tmp_path / "apps"
    for app in ("jobs", "reports"):
        (apps_dir / app / "templates" / app).mkdir(parents=True)
        (apps_dir / app / "__init__.py").write_text("")
    (apps_dir / "reports" / "templatetags").mkdir()
    (apps_dir / "reports" / "templatetags" / "reports.py").write_text("")
    (apps_dir / "reports" / "urls.py").write_text('app_name = "reports"\n')
    (apps_dir / "jobs" / "templates" / "jobs" / "runs.html").write_text(
        '{% load static reports %}{% include "reports/button.html" %}{% url "reports:x" %}'
    )
    monkeypatch.setattr(__import__(__name__, fromlist=["x"]), "APPS_DIR", apps_dir)
    assert forbidden_template_uses("jobs") == [
        "apps/jobs/templates/jobs/runs.html uses reports (load reports)",
        "apps/jobs/templates/jobs/runs.html uses reports (template reports)",
        "apps/jobs/templates/jobs/runs.html uses reports (url reports)",
    ]
