"""The Content-Security-Policy header (django-csp), and templates that need nothing it forbids.

The header is checked here on the server side; tests/e2e/test_csp.py checks that a real
browser, applying it, refuses nothing on any page of the loop.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from tests.conftest import login

STRICT = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}


def _policy(response) -> dict[str, str]:  # type: ignore[no-untyped-def]
    header = response.get("Content-Security-Policy", "")
    directives = (part.strip().split(None, 1) for part in header.split(";") if part.strip())
    return {d[0]: (d[1] if len(d) > 1 else "") for d in directives}


def test_the_login_page_is_sent_with_the_strict_policy(db):
    response = Client().get(reverse("login"))

    assert response.status_code == 200
    assert _policy(response) == STRICT
    assert "Content-Security-Policy-Report-Only" not in response


@pytest.mark.django_db
def test_the_review_card_and_its_htmx_partial_are_sent_with_the_strict_policy(dataset, reviewer):
    client = login(reviewer)
    url = reverse("annotations:review", args=[dataset.pk])

    page = client.get(url)
    partial = client.get(url, HTTP_HX_REQUEST="true")

    assert page.status_code == partial.status_code == 200
    assert _policy(page) == STRICT
    assert _policy(partial) == STRICT


def test_api_answers_carry_the_policy_too(db):
    response = Client().get(reverse("api_datasets"))

    assert _policy(response) == STRICT


def test_no_template_has_an_inline_style_script_or_event_handler():
    """What the policy would refuse: style= attributes, inline <script> bodies, on*= and hx-on handlers."""
    forbidden = re.compile(r"""\sstyle=|<script(?![^>]*\ssrc=)|\son[a-z]+=|\shx-on""", re.IGNORECASE)
    offenders = []
    for template in sorted(Path(settings.BASE_DIR, "templates").rglob("*.html")):
        for number, line in enumerate(template.read_text().splitlines(), start=1):
            if forbidden.search(line):
                offenders.append(f"{template.relative_to(settings.BASE_DIR)}:{number}: {line.strip()}")
    assert offenders == []
