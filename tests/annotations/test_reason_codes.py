"""Reason codes and the follow-up flag (issue 8, point 6): configured per dataset, picked on the card apart from
the note, required for a correction when a dataset has codes, stored on the review and in its audit event."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from annotations.models import Dataset, Item, Review
from annotations.queue import queue_next_item
from annotations.reason_codes import reason_codes_check
from annotations.services import ReviewAnswer, review_submit
from governance.models import AuditEvent
from tests.helpers import answer_for, login, other_label

CODES = [{"code": "margin", "text": "Irregular margin missed"}, {"code": "artefact", "text": "Measurement artefact"}]


@pytest.fixture
def coded(trained_dataset: Dataset) -> Dataset:
    Dataset.objects.filter(pk=trained_dataset.pk).update(reason_codes=CODES)
    trained_dataset.refresh_from_db()
    return trained_dataset


def _correct(dataset: Dataset, reviewer, **extra) -> Review:  # type: ignore[no-untyped-def]
    item = queue_next_item(dataset=dataset, reviewer=reviewer).item
    answer = ReviewAnswer(label=other_label(item), shown_prediction_id=item.prediction_id, **extra)
    return review_submit(item_id=item.pk, reviewer=reviewer, answer=answer)


def test_a_correction_with_a_code_and_a_flag_is_stored_and_audited(coded, reviewer, broker):
    review = _correct(coded, reviewer, reason_code="margin", flagged=True, reason="look again")

    assert (review.decision, review.reason_code, review.flagged, review.reason) == (
        Review.Decision.CORRECT,
        "margin",
        True,
        "look again",
    )
    event = AuditEvent.objects.get(action="review.submitted")
    assert (event.after["reason_code"], event.after["flagged"]) == ("margin", True)


def test_a_correction_without_a_code_is_refused_with_the_choices_and_changes_nothing(coded, reviewer, broker):
    with pytest.raises(ValidationError) as caught:
        _correct(coded, reviewer)
    assert (
        "pick a reason (Irregular margin missed; Measurement artefact)" in caught.value.message_dict["reason_code"][0]
    )
    assert not Review.objects.exists()


def test_an_unknown_code_is_refused(coded, reviewer, broker):
    with pytest.raises(ValidationError, match="Unknown reason code 'nope'"):
        _correct(coded, reviewer, reason_code="nope")


def test_accepting_or_skipping_needs_no_code_and_a_dataset_without_codes_needs_none(
    coded, trained_dataset, reviewer, broker
):
    item = queue_next_item(dataset=coded, reviewer=reviewer).item
    assert review_submit(item_id=item.pk, reviewer=reviewer, answer=answer_for(item)).reason_code == ""
    Dataset.objects.filter(pk=coded.pk).update(reason_codes=[])
    coded.refresh_from_db()
    assert _correct(coded, reviewer).reason_code == ""


@pytest.mark.parametrize(
    ("codes", "where"),
    [
        ("margin", "reason_codes"),
        ([{"code": "Margin!", "text": "x"}], "reason_codes[0]"),
        ([{"code": "a", "text": ""}], "reason_codes[0]"),
        ([{"code": "a", "text": "x"}, {"code": "a", "text": "y"}], "reason_codes[1]"),
        ([{"code": "a"}], "reason_codes[0]"),
    ],
)
def test_a_badly_configured_list_is_refused_where_it_is_wrong(codes, where):
    with pytest.raises(ValidationError) as caught:
        reason_codes_check(codes)
    assert where in caught.value.message_dict


def test_the_card_offers_the_codes_and_the_page_post_stores_them(coded, reviewer, broker):
    client = login(reviewer)
    page = client.get(reverse("annotations:review", args=[coded.pk])).content.decode()
    assert 'name="reason_code" value="margin"' in page and "Measurement artefact" in page and 'name="flagged"' in page
    item = Item.objects.get(leased_to=reviewer)

    client.post(
        reverse("annotations:review_submit", args=[coded.pk, item.pk]),
        {
            "label": other_label(item).name,
            "shown_prediction": item.prediction_id,
            "action": "submit",
            "reason_code": "artefact",
            "flagged": "on",
        },
        HTTP_HX_REQUEST="true",
    )
    assert Review.objects.values_list("reason_code", "flagged").get() == ("artefact", True)


def test_the_api_takes_a_code_and_a_flag_and_lists_the_codes(coded, reviewer, broker):
    client = login(reviewer)
    assert client.get("/api/datasets/").json()[0]["reason_codes"] == CODES
    item_row = Item.objects.get(pk=client.get(f"/api/datasets/{coded.pk}/next-item/").json()["item"]["id"])
    response = client.post(
        f"/api/items/{item_row.pk}/reviews/",
        {
            "label": other_label(item_row).name,
            "shown_prediction_id": item_row.prediction_id,
            "reason_code": "margin",
            "flagged": True,
        },
        content_type="application/json",
    )
    assert response.status_code == 201 and (response.json()["reason_code"], response.json()["flagged"]) == (
        "margin",
        True,
    )
