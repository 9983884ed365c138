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


def _held_item(dataset, reviewer) -> Item:
    from annotations.queue import queue_next_item

    return queue_next_item(dataset=dataset, reviewer=reviewer).item


def test_an_answer_names_its_label_as_the_input_reads_it(trained_dataset, reviewer):
    # The access check reads the label named in the body in its own statement; the serializer strips it.
    item = _held_item(trained_dataset, reviewer)
    response = login(reviewer).post(
        f"/api/items/{item.pk}/reviews/",
        {"label": "  benign ", "shown_prediction_id": item.prediction_id},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["label"] == "benign"
    assert Review.objects.get(item=item).label.name == "benign"


def test_an_unknown_label_is_refused_by_name_and_changes_nothing(trained_dataset, reviewer):
    item = _held_item(trained_dataset, reviewer)
    response = login(reviewer).post(
        f"/api/items/{item.pk}/reviews/",
        {"label": "benignish", "shown_prediction_id": item.prediction_id},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert "Unknown label 'benignish'" in response.content.decode()
    assert not Review.objects.exists()


def test_a_label_of_another_dataset_is_unknown_here(trained_dataset, reviewer):
    from annotations.models import Dataset, LabelClass

    other = Dataset.objects.create(name="Other", slug="other")
    LabelClass.objects.create(dataset=other, position=0, name="elsewhere")
    item = _held_item(trained_dataset, reviewer)
    response = login(reviewer).post(
        f"/api/items/{item.pk}/reviews/",
        {"label": "elsewhere", "shown_prediction_id": item.prediction_id},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert not Review.objects.exists()


def test_a_non_member_is_refused_before_the_body_is_read(trained_dataset, reviewer, non_member_reviewer):
    item = _held_item(trained_dataset, reviewer)
    response = login(non_member_reviewer).post(
        f"/api/items/{item.pk}/reviews/", [1, 2], content_type="application/json"
    )
    assert response.status_code == 403
    missing = login(non_member_reviewer).post("/api/items/987654321/reviews/", {}, content_type="application/json")
    assert missing.status_code == 403  # the same answer as for another dataset's item: ids are not probed
