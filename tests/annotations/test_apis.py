"""The review API (annotations/apis.py): an answer counts only for an item the queue handed to the caller."""

from __future__ import annotations

from annotations.models import Item, Review
from tests.helpers import login


def test_an_item_the_queue_did_not_hand_out_cannot_be_reviewed_through_the_api(trained_dataset, reviewer):
    # The most confident item: a reviewer picking it would falsify the "least confidence" selection reason.
    item = Item.objects.filter(dataset=trained_dataset, queue_state="open").order_by("-queue_priority").first()
    response = login(reviewer).post(
        f"/api/items/{item.pk}/reviews/",
        {"label": "benign", "shown_prediction_id": item.prediction_id},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert "not handed to you" in response.content.decode()
    assert not Review.objects.exists()
