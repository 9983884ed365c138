"""An item's history through the API (governance/item_history_apis.py, issue 10): the auditor's item page as
JSON, the read logged as the page's is (who read what), and refused to everyone else."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from annotations.models import Item
from governance.models import DataAccess
from tests.helpers import login, review_next


@pytest.fixture
def reviewed(trained_dataset, reviewer) -> Item:
    """An item of the open pool answered by the reviewer (with the champion's prediction shown)."""
    review = review_next(trained_dataset, reviewer)
    return Item.objects.get(pk=review.item_id)


def _url(item_id: int) -> str:
    return f"/api/items/{item_id}/history/"


def test_the_auditor_gets_what_the_item_page_shows(reviewed, auditor, reviewer):
    client = login(auditor)
    client.get(reverse("governance:item_history", args=[reviewed.pk]))  # a read before: listed below

    response = client.get(_url(reviewed.pk))

    assert response.status_code == 200
    body = response.json()
    item = body["item"]
    assert (item["id"], item["external_id"], item["dataset_id"]) == (
        reviewed.pk,
        reviewed.external_id,
        reviewed.dataset_id,
    )
    assert item["values"] == reviewed.values and item["content_hash"] == reviewed.content_hash
    assert item["file_sha256"] == reviewed.batch.file_sha256 and item["purged_at"] is None
    assert [f["name"] for f in body["features"]] == ["radius", "texture", "lobes"]
    (review,) = body["reviews"]
    assert review["reviewer"] == reviewer.username and review["decision"] == "accept"
    assert review["shown_label"] == review["label"] and review["selection_strategy"]
    (prediction,) = body["predictions"]
    assert prediction["id"] == reviewed.prediction_id and prediction["model_version"] == 1
    assert "review.submitted" in [e["action"] for e in body["events"]]
    assert all(e["hash"] for e in body["events"])
    assert [a["purpose"] for a in body["accesses"]][:1] == ["item_history"]


def test_the_read_is_logged_as_returned_by_the_api(reviewed, auditor):
    login(auditor).get(_url(reviewed.pk))

    (access,) = DataAccess.objects.filter(item_id=reviewed.pk, user=auditor)
    assert access.purpose == DataAccess.Purpose.API and access.dataset_id == reviewed.dataset_id


@pytest.mark.parametrize("persona", ["reviewer", "model_admin", "outsider"])
def test_only_the_auditor_reads_an_items_history(reviewed, request, persona):
    user = request.getfixturevalue(persona)

    assert login(user).get(_url(reviewed.pk)).status_code == 403
    assert login(user).get(_url(987654321)).status_code == 403  # a missing item: the same answer
    assert not DataAccess.objects.filter(item_id=reviewed.pk, user=user, purpose=DataAccess.Purpose.API).exists()


def test_a_missing_item_is_a_404_for_the_auditor_and_nothing_is_logged(db, auditor):
    assert login(auditor).get(_url(987654321)).status_code == 404
    assert not DataAccess.objects.exists()


def test_without_credentials_an_items_history_is_a_401(db):
    assert Client().get(_url(1)).status_code == 401
