"""A tied prediction (annotations/prediction_tie.py): the card names neither label as the model's, so the
answer is a plain label whichever class is chosen, through the page and the API alike: no "accept" of the
argmax's first class, no "correct" (and no reason code) for the other, and no shown label recorded."""

from __future__ import annotations

import pytest
from django.urls import reverse

from annotations.models import Dataset, Item, Review
from annotations.prediction_tie import prediction_tie
from annotations.queue import queue_next_item
from governance.models import AuditEvent
from tests.helpers import login

CODES = [{"code": "margin", "text": "Irregular margin missed"}, {"code": "artefact", "text": "Measurement artefact"}]
TIED = {"malignant": 0.5, "benign": 0.5}


@pytest.fixture
def coded(trained_dataset: Dataset) -> Dataset:
    """A dataset whose corrections need a reason code: a tie answered as a "correct" would be refused."""
    Dataset.objects.filter(pk=trained_dataset.pk).update(reason_codes=CODES)
    trained_dataset.refresh_from_db()
    return trained_dataset


def _hold_tied(dataset: Dataset, reviewer, probabilities: dict[str, float] = TIED) -> Item:  # type: ignore[no-untyped-def]
    """The reviewer's current item, its prediction made a tie (argmax: the first class, malignant)."""
    item = queue_next_item(dataset=dataset, reviewer=reviewer).item
    top = max(probabilities, key=probabilities.get)
    Item.objects.filter(pk=item.pk).update(
        predicted_probabilities=probabilities,
        predicted_confidence=probabilities[top],
        predicted_label=dataset.label_classes.get(name=top),
    )
    return Item.objects.select_related("predicted_label").get(pk=item.pk)


def _answer_on_the_page(client, dataset: Dataset, item: Item, label: str):  # type: ignore[no-untyped-def]
    return client.post(
        reverse("annotations:review_submit", args=[dataset.pk, item.pk]),
        {
            "shown_prediction": item.prediction_id,
            "held_until": item.lease_expires_at.isoformat(),
            "label": label,
            "action": "submit",
            "reason": "",
        },
        HTTP_HX_REQUEST="true",
    )


def _answer_through_the_api(client, dataset: Dataset, item: Item, label: str):  # type: ignore[no-untyped-def]
    return client.post(
        f"/api/items/{item.pk}/reviews/",
        {"label": label, "shown_prediction_id": item.prediction_id},
        content_type="application/json",
    )


@pytest.mark.parametrize("channel", [_answer_on_the_page, _answer_through_the_api], ids=["page", "api"])
@pytest.mark.parametrize("label", ["malignant", "benign"])
def test_a_tied_item_answered_with_either_label_is_a_label_without_a_reason_code(
    coded, reviewer, broker, channel, label
):
    item = _hold_tied(coded, reviewer)
    assert item.predicted_label.name == "malignant"  # what the argmax stored: the first of the tied classes

    response = channel(login(reviewer), coded, item, label)

    assert response.status_code in (200, 201), response.content
    review = Review.objects.get(item=item)
    assert review.decision == Review.Decision.LABEL
    assert review.label.name == label
    assert review.reason_code == ""
    assert review.shown_label_id is None  # nothing was shown as the model's label
    assert review.shown_confidence == 0.5  # what the card displayed
    assert review.shown_prediction_id == item.prediction_id
    event = AuditEvent.objects.get(action="review.submitted", object_id=str(item.pk))
    assert (event.after["decision"], event.after["shown_label"], event.after["shown_confidence"]) == (
        "label",
        None,
        0.5,
    )


def test_a_near_tie_the_card_shows_as_undecided_is_answered_as_a_label(coded, reviewer, broker):
    item = _hold_tied(coded, reviewer, {"malignant": 0.504, "benign": 0.496})
    client = login(reviewer)
    assert "undecided" in client.get(reverse("annotations:review", args=[coded.pk])).content.decode()

    _answer_on_the_page(client, coded, item, "benign")

    review = Review.objects.get(item=item)
    assert (review.decision, review.shown_label_id, review.reason_code) == (Review.Decision.LABEL, None, "")


def test_a_clear_prediction_is_still_accepted_or_corrected_with_a_reason_code(coded, reviewer, broker):
    item = _hold_tied(coded, reviewer, {"malignant": 0.8, "benign": 0.2})
    client = login(reviewer)

    refused = _answer_through_the_api(client, coded, item, "benign")
    assert refused.status_code == 400
    assert "reason_code" in refused.content.decode()
    _answer_through_the_api(client, coded, item, "malignant")

    review = Review.objects.get(item=item)
    assert (review.decision, review.shown_label.name) == (Review.Decision.ACCEPT, "malignant")


@pytest.mark.parametrize(
    ("probabilities", "tied"),
    [
        ({"a": 0.5, "b": 0.5}, True),
        ({"a": 0.504, "b": 0.496}, True),  # both read 50% on the card
        ({"a": 0.4, "b": 0.3, "c": 0.3}, False),  # a tie below the top is not the model's indecision
        ({"a": 0.51, "b": 0.49}, False),
        ({"a": 1.0}, False),
        ({}, False),
        (None, False),
    ],
)
def test_prediction_tie_is_about_the_top_two_classes(probabilities, tied):
    assert (prediction_tie(probabilities) is not None) is tied
