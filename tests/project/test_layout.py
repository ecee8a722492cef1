"""The site layout and its stylesheet live at project level (templates/, static/) and
reach production: the pages link the stylesheet, and collectstatic (the image's build
step, served by WhiteNoise) gathers it."""

from pathlib import Path

import pytest
from django.core.management import call_command
from django.template.loader import get_template

from tests.helpers import make_superuser, make_user

ROOT = Path(__file__).resolve().parents[2]


def test_the_layout_template_is_the_project_one():
    origin = Path(get_template("switchyard/base.html").origin.name)
    assert origin == ROOT / "templates" / "switchyard" / "base.html"


def test_collectstatic_gathers_the_stylesheet_from_the_project_static_folder(settings, tmp_path):
    settings.STATIC_ROOT = tmp_path
    call_command("collectstatic", "--noinput", verbosity=0)
    collected = tmp_path / "switchyard" / "site.css"
    assert collected.read_bytes() == (ROOT / "static" / "switchyard" / "site.css").read_bytes()


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/", "/jobs/", "/runs/"])
def test_every_page_links_the_stylesheet(client, url):
    client.force_login(make_user())
    page = client.get(url)
    assert page.status_code == 200
    assert 'href="/static/switchyard/site.css"' in page.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/", "/jobs/", "/runs/", "/accounts/login/", "/admin/",
                                 "/admin/login/", "/admin/jobs/run/"])  # fmt: skip
def test_every_page_and_admin_page_names_the_site_icon(client, url):
    """So that no browser asks for /favicon.ico (a 404 in every page's console)."""
    if url != "/accounts/login/" and url != "/admin/login/":
        client.force_login(make_superuser())
    page = client.get(url)
    assert page.status_code == 200
    icon = '<link rel="icon" href="/static/switchyard/favicon.svg" type="image/svg+xml">'
    assert icon in page.content.decode()
    assert (ROOT / "static" / "switchyard" / "favicon.svg").read_text().startswith("<svg")
