"""Reads of an item's data are logged: who saw which item, when, and how."""

from __future__ import annotations

from django.urls import reverse

from annotations.models import Item
from governance.models import DataAccess
from tests.conftest import login


def test_each_review_card_shown_logs_one_read_by_that_reviewer(trained_dataset, reviewer):
    client = login(reviewer)
    client.get(reverse("annotations:review", args=[trained_dataset.pk]))
    held = Item.objects.get(leased_to=reviewer)
    access = DataAccess.objects.get()
    assert (access.user, access.item_id, access.dataset_id) == (reviewer, held.pk, trained_dataset.pk)
    assert access.purpose == DataAccess.Purpose.REVIEW_CARD
    assert access.request_id  # ties the read to the HTTP request


def test_the_api_next_item_logs_a_read(trained_dataset, reviewer):
    response = login(reviewer).get(f"/api/datasets/{trained_dataset.pk}/next-item/")
    assert response.status_code == 200
    access = DataAccess.objects.get()
    assert access.item_id == response.json()["item"]["id"] and access.purpose == DataAccess.Purpose.API


def test_an_empty_queue_logs_no_read(dataset, reviewer):
    login(reviewer).get(reverse("annotations:review", args=[dataset.pk]))
    assert not DataAccess.objects.exists()


def test_auditor_opening_an_item_is_logged_and_listed_on_the_item_page(trained_dataset, reviewer, auditor):
    login(reviewer).get(reverse("annotations:review", args=[trained_dataset.pk]))
    item = Item.objects.get(leased_to=reviewer)
    response = login(auditor).get(reverse("governance:item_history", args=[item.pk]))
    assert response.status_code == 200
    assert list(DataAccess.objects.order_by("accessed_at").values_list("user__username", "purpose")) == [
        ("reviewer", "review_card"),
        ("auditor", "item_history"),
    ]
    assert b"Shown on a review card" in response.content


def test_data_access_records_are_append_only(trained_dataset, reviewer):
    login(reviewer).get(reverse("annotations:review", args=[trained_dataset.pk]))
    access = DataAccess.objects.get()
    access.purpose = DataAccess.Purpose.API
    try:
        access.save()
    except ValueError as exc:
        assert "append-only" in str(exc)
    else:
        raise AssertionError("an access record was rewritten")
