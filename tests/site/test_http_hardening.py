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
from django.urls import reverse
from django.utils.cache import get_max_age

from annotations.models import Item
from governance.audit import audit_record
from governance.credentials import api_token_create
from models_app.models import ModelVersion
from tests.conftest import login

HTMX = {"HTTP_HX_REQUEST": "true"}
# The audit API's page sizes: 100 unless asked, never more than 500.
AUDIT_PAGE_DEFAULT, AUDIT_PAGE_MAX = 100, 500


def _cache_directives(response) -> set[str]:  # type: ignore[no-untyped-def]
    return {part.strip().lower() for part in response.get("Cache-Control", "").split(",") if part.strip()}


def _varies_on(response, header: str) -> bool:  # type: ignore[no-untyped-def]
    return header.lower() in {part.strip().lower() for part in response.get("Vary", "").split(",")}


def _assert_not_stored(response) -> None:  # type: ignore[no-untyped-def]
    directives = _cache_directives(response)
    assert {"no-store", "private"} <= directives, response.get("Cache-Control")
    assert "public" not in directives
    assert get_max_age(response) in (None, 0)


# --- (a) no-store on everything that carries item data --------------------------


def test_the_review_card_page_and_its_partial_are_not_stored(trained_dataset, reviewer):
    client = login(reviewer)
    url = reverse("annotations:review", args=[trained_dataset.pk])

    page = client.get(url)
    partial = client.get(url, **HTMX)

    assert page.status_code == partial.status_code == 200
    _assert_not_stored(page)
    _assert_not_stored(partial)


def test_a_review_submitted_through_htmx_answers_with_a_card_that_is_not_stored(trained_dataset, reviewer):
    client = login(reviewer)
    client.get(reverse("annotations:review", args=[trained_dataset.pk]))
    item = Item.objects.get(leased_to=reviewer)
    label = trained_dataset.label_classes.first()

    response = client.post(
        reverse("annotations:review_submit", args=[trained_dataset.pk, item.pk]),
        {"label": label.name, "shown_prediction": item.prediction_id or "", "reason": "checked"},
        **HTMX,
    )

    assert response.status_code == 200
    _assert_not_stored(response)


def test_item_history_is_not_stored(trained_dataset, auditor):
    item = Item.objects.filter(dataset=trained_dataset).first()

    response = login(auditor).get(reverse("governance:item_history", args=[item.pk]))

    assert response.status_code == 200
    _assert_not_stored(response)


def test_the_next_item_api_and_the_review_api_are_not_stored(trained_dataset, reviewer):
    client = login(reviewer)

    nxt = client.get(f"/api/datasets/{trained_dataset.pk}/next-item/")
    item = nxt.json()["item"]
    label = trained_dataset.label_classes.first()
    submitted = client.post(
        f"/api/items/{item['id']}/reviews/",
        {"label": label.name, "shown_prediction_id": Item.objects.get(pk=item["id"]).prediction_id},
        content_type="application/json",
    )

    assert nxt.status_code == 200
    assert submitted.status_code == 201, submitted.content
    _assert_not_stored(nxt)
    _assert_not_stored(submitted)


def test_an_api_answer_to_a_token_client_is_not_stored(trained_dataset, reviewer):
    _, secret = api_token_create(user=reviewer, name="tests", days=1)

    response = Client().get(f"/api/datasets/{trained_dataset.pk}/next-item/", HTTP_AUTHORIZATION=f"Token {secret}")

    assert response.status_code == 200
    _assert_not_stored(response)


# --- (a) Vary: HX-Request where the view picks a partial or a page ---------------


def test_the_review_page_varies_on_hx_request(trained_dataset, reviewer):
    client = login(reviewer)
    url = reverse("annotations:review", args=[trained_dataset.pk])

    assert _varies_on(client.get(url), "HX-Request")
    assert _varies_on(client.get(url, **HTMX), "HX-Request")


def test_the_training_run_page_varies_on_hx_request(trained_dataset, model_admin):
    run_id = ModelVersion.objects.filter(dataset=trained_dataset).values_list("training_run_id", flat=True).first()
    client = login(model_admin)
    url = reverse("models_app:run_detail", args=[run_id])

    page, partial = client.get(url), client.get(url, **HTMX)

    assert page.status_code == partial.status_code == 200
    assert _varies_on(page, "HX-Request") and _varies_on(partial, "HX-Request")
    _assert_not_stored(page)


def test_the_audit_verify_page_varies_on_hx_request(db, auditor):
    client = login(auditor)
    url = reverse("governance:audit_verify")

    asked, partial = client.post(url), client.post(url, **HTMX)  # the second finds the first run still queued
    run_page, run_partial = client.get(asked["Location"]), client.get(asked["Location"], **HTMX)

    assert asked.status_code == 302 and partial.status_code == run_page.status_code == run_partial.status_code == 200
    assert all(_varies_on(response, "HX-Request") for response in (partial, run_page, run_partial))


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
    _, secret = api_token_create(user=model_admin, name="tests", days=1)
    client = Client(enforce_csrf_checks=True)

    response = client.get("/api/datasets/", HTTP_AUTHORIZATION=f"Token {secret}")

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
    assert len(body["results"]) == AUDIT_PAGE_MAX
    assert body["next"] is not None
    rest = login(auditor).get(body["next"]).json()
    assert len(rest["results"]) == 5 and rest["next"] is None
    assert not {e["seq"] for e in body["results"]} & {e["seq"] for e in rest["results"]}


def test_the_audit_api_pages_by_100_unless_asked(many_events, auditor):
    body = login(auditor).get("/api/audit-events/", {"action": "test.bulk"}).json()

    assert len(body["results"]) == AUDIT_PAGE_DEFAULT
    assert set(body) == {"next", "previous", "results"}, "keyset pages: no count of the whole trail"


def test_the_schema_documents_the_audit_list_as_a_paged_list(auditor):
    schema = login(auditor).get("/api/schema/", {"format": "json"})

    assert schema.status_code == 200
    operation = schema.json()["paths"]["/api/audit-events/"]["get"]
    parameters = {p["name"] for p in operation["parameters"]}
    assert {"limit", "cursor", "action"} <= parameters
    content = operation["responses"]["200"]["content"]["application/json"]["schema"]
    ref = content["$ref"].rsplit("/", 1)[-1]
    paged = schema.json()["components"]["schemas"][ref]
    assert {"next", "previous", "results"} <= set(paged["properties"])
