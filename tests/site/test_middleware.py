"""Middleware (workflow_site/middleware.py): an expired session sends htmx to the login page, not into the card."""

from __future__ import annotations

from django.test import Client
from django.urls import reverse


def test_an_expired_session_sends_htmx_to_the_login_page_not_into_the_card(trained_dataset):
    url = reverse("annotations:review_submit", args=[trained_dataset.pk, 1])
    review_page = reverse("annotations:review", args=[trained_dataset.pk])
    response = Client().post(
        url, {"label": "benign"}, HTTP_HX_REQUEST="true", HTTP_HX_CURRENT_URL=f"http://testserver{review_page}"
    )
    assert response.status_code == 200
    assert response["HX-Redirect"] == f"/login/?next={review_page.replace('/', '%2F')}"
    assert b"Sign in" not in response.content


def test_a_plain_request_still_redirects_to_login(trained_dataset):
    response = Client().get(reverse("annotations:review", args=[trained_dataset.pk]))
    assert response.status_code == 302 and response["Location"].startswith("/login/")
