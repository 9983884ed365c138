"""/api/ serves Swagger UI from our own static files, for people who are signed in (issue 6, defect 16)."""

from __future__ import annotations

import re

import pytest
from django.contrib.staticfiles import finders
from django.test import Client

from tests.helpers import login, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def client_in() -> Client:
    return login(make_user("api-reader"))


def test_api_root_leads_to_the_docs():
    response = Client().get("/api/")

    assert response.status_code in (301, 302)
    assert response["Location"] == "/api/docs/"


def test_the_docs_need_a_login():
    response = Client().get("/api/docs/")

    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_the_docs_page_loads_only_our_own_static_assets_and_no_inline_code(client_in):
    response = client_in.get("/api/docs/")

    page = response.content.decode()
    assert response.status_code == 200
    urls = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert urls, page
    for url in urls:
        assert url.startswith("/static/") or url.startswith("/api/docs/?"), url
        assert "//" not in url, url
    static = [u.removeprefix("/static/") for u in urls if u.startswith("/static/")]
    assert any("swagger-ui-bundle" in u for u in static)
    for path in static:
        assert finders.find(path), f"{path} is not a static file here"
    # No inline script or style: a CSP of script-src 'self' and style-src 'self' holds.
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page)
    assert "<style" not in page and "style=" not in page


def test_the_docs_start_up_script_is_javascript_that_points_at_the_schema(client_in):
    page = client_in.get("/api/docs/").content.decode()
    script_url = next(u for u in re.findall(r'src="([^"]+)"', page) if u.startswith("/api/docs/?"))

    script = client_in.get(script_url.replace("&amp;", "&"))

    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert "/api/schema/" in script.content.decode()
