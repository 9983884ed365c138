"""Headers that keep item data out of caches and tell API clients how to authenticate.

- every page and API response that can carry item data is `Cache-Control: private, no-store`;
- views that answer htmx with a partial and a browser with the page say `Vary: HX-Request`;
- an API call without credentials is a 401 that names the Token scheme, while a
  session-authenticated call still needs its CSRF token;
- the audit API pages its results, with a cap on the page size, and its schema says so.
"""

from __future__ import annotations

import pytest
from django.db import transaction
from django.test import Client
from rest_framework.authtoken.models import Token

from annotations.models import Item
from governance.audit import audit_record
from tests.conftest import login

# The audit API's page sizes: 100 unless asked, never more than 500.
AUDIT_PAGE_DEFAULT, AUDIT_PAGE_MAX = 100, 500


# --- (b) 401 with WWW-Authenticate; CSRF still enforced for sessions ------------


def test_an_api_call_without_credentials_is_a_401_naming_the_token_scheme(db):
    response = Client().get("/api/datasets/")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_a_bad_token_is_a_401_too(db):
    response = Client().get("/api/datasets/", HTTP_AUTHORIZATION="Token not-a-real-token")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_a_token_client_needs_no_csrf_token(trained_dataset, model_admin):
    token = Token.objects.create(user=model_admin)
    client = Client(enforce_csrf_checks=True)

    response = client.get("/api/datasets/", HTTP_AUTHORIZATION=f"Token {token.key}")

    assert response.status_code == 200
    assert trained_dataset.pk in [d["id"] for d in response.json()]


def test_a_session_post_without_a_csrf_token_is_still_refused(trained_dataset, reviewer):
    client = Client(enforce_csrf_checks=True)
    client.force_login(reviewer)
    item = Item.objects.filter(dataset=trained_dataset, queue_state=Item.QueueState.OPEN).first()
    reviews_before = item.reviews.count()

    response = client.post(
        f"/api/items/{item.pk}/reviews/", {"skip": True, "shown_prediction_id": None}, content_type="application/json"
    )

    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    assert item.reviews.count() == reviews_before


# --- (c) the audit API is paged, with a cap ------------------------------------


@pytest.fixture
def many_events(db) -> None:
    with transaction.atomic():
        for n in range(AUDIT_PAGE_MAX + 5):
            audit_record(actor=None, action="test.bulk", object_type="thing", object_id=n)


def test_the_audit_api_caps_the_page_size(many_events, auditor):
    response = login(auditor).get("/api/audit-events/", {"action": "test.bulk", "limit": 100_000})

    body = response.json()
    assert response.status_code == 200
    assert body["count"] == AUDIT_PAGE_MAX + 5
    assert len(body["results"]) == AUDIT_PAGE_MAX
    assert body["next"] is not None


def test_the_audit_api_pages_by_100_unless_asked(many_events, auditor):
    body = login(auditor).get("/api/audit-events/", {"action": "test.bulk"}).json()

    assert len(body["results"]) == AUDIT_PAGE_DEFAULT
    assert set(body) == {"count", "next", "previous", "results"}


def test_the_schema_documents_the_audit_list_as_a_paged_list(auditor):
    schema = login(auditor).get("/api/schema/", {"format": "json"})

    assert schema.status_code == 200
    operation = schema.json()["paths"]["/api/audit-events/"]["get"]
    parameters = {p["name"] for p in operation["parameters"]}
    assert {"limit", "offset", "action"} <= parameters
    content = operation["responses"]["200"]["content"]["application/json"]["schema"]
    ref = content["$ref"].rsplit("/", 1)[-1]
    paged = schema.json()["components"]["schemas"][ref]
    assert {"count", "next", "previous", "results"} <= set(paged["properties"])
