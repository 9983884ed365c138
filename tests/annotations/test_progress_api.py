"""The progress API (annotations/progress_apis.py): the review card's figures, for API clients (issue 8).

"Everything in the UI is in the API too": answers today, items left, agreement so far, each the card's own
figure, after answers, a revision, an undo and a skip; and the roles of the next-item API.
"""

from __future__ import annotations

import re

import pytest
from django.urls import reverse
from drf_spectacular.generators import SchemaGenerator

from annotations.adjudication import adjudication_submit
from annotations.models import Dataset, Item, Review
from annotations.queue import adjudication_next_item, queue_next_item
from annotations.services import ReviewAnswer, review_revise, review_submit
from governance.models import AuditEvent
from tests.helpers import answer_for, login, other_label

PROGRESS = "/api/datasets/{}/progress/"


def _overlap(dataset: Dataset, k: int) -> Dataset:
    Dataset.objects.filter(pk=dataset.pk).update(overlap=k)
    return Dataset.objects.get(pk=dataset.pk)


def _answer(dataset: Dataset, reviewer, *, accept: bool = True) -> Review:  # type: ignore[no-untyped-def]
    queued = queue_next_item(dataset=dataset, reviewer=reviewer)
    assert queued is not None
    return review_submit(item_id=queued.item.pk, reviewer=reviewer, answer=answer_for(queued.item, accept=accept))


def _revise_to_the_other_label(review: Review) -> Review:
    item = Item.objects.get(pk=review.item_id)
    answer = ReviewAnswer(label=other_label(item), shown_prediction_id=item.prediction_id)
    return review_revise(review_id=review.pk, reviewer=review.reviewer, answer=answer)


def _skip_held_item(dataset: Dataset, reviewer) -> Review:  # type: ignore[no-untyped-def]
    item = queue_next_item(dataset=dataset, reviewer=reviewer).item
    return review_submit(
        item_id=item.pk, reviewer=reviewer, answer=ReviewAnswer(label=None, shown_prediction_id=item.prediction_id)
    )


def _card_figures(page: str) -> dict[str, int | None]:
    """What the review page says: awaiting, left for you (overlap > 1 only), answered today, agreement."""
    card = re.search(r"(\d+) awaiting review(?: \((\d+) left for you\))? · you answered (\d+) today", page)
    assert card is not None, "the card shows no progress line"
    agreement = re.search(r"you agree with settled gold on (\d+) of (\d+)", page)
    return {
        "open_count": int(card[1]),
        "left_for_you": int(card[2]) if card[2] is not None else None,
        "answers_today": int(card[3]),
        "agreed": int(agreement[1]) if agreement else 0,
        "compared": int(agreement[2]) if agreement else 0,
    }


def _api_figures(body: dict) -> dict[str, int]:
    return {
        "open_count": body["open_count"],
        "left_for_you": body["left_for_you"],
        "answers_today": body["answers_today"],
        "agreed": body["agreement_so_far"]["agreed"],
        "compared": body["agreement_so_far"]["compared"],
    }


def test_with_overlap_two_the_api_gives_the_cards_figures_after_answers_a_revision_an_undo_and_a_skip(
    trained_dataset, reviewer, reviewer2, adjudicator
):
    dataset = _overlap(trained_dataset, 2)
    open_before = Item.objects.filter(dataset=dataset, queue_state=Item.QueueState.OPEN).count()
    # Agreed: both accept, the consensus is the reviewer's label.
    agreed = _answer(dataset, reviewer)
    assert _answer(dataset, reviewer2).item_id == agreed.item_id
    # Overruled: reviewer2 corrects, the adjudicator sides with reviewer2.
    overruled = _answer(dataset, reviewer)
    assert _answer(dataset, reviewer2, accept=False).item_id == overruled.item_id
    held = adjudication_next_item(dataset=dataset, adjudicator=adjudicator).item
    adjudication_submit(item_id=held.pk, adjudicator=adjudicator, label=other_label(held), reason="irregular margin")
    # Revised: two reviews, one item answered (still open: it waits for a second reviewer).
    _revise_to_the_other_label(_answer(dataset, reviewer))
    # Undone, then skipped: no answer in force.
    undone = _answer(dataset, reviewer)
    review_revise(review_id=undone.pk, reviewer=reviewer, answer=None)
    assert _skip_held_item(dataset, reviewer).item_id == undone.item_id

    client = login(reviewer)
    response = client.get(PROGRESS.format(dataset.pk))
    page = client.get(reverse("annotations:review", args=[dataset.pk])).content.decode()

    assert response.status_code == 200, response.content
    # Three items answered and in force; the revision, the withdrawal and the skip add nothing.
    expected = {
        "answers_today": 3,
        "open_count": open_before - 2,  # the agreed item is done, the overruled one was adjudicated
        "left_for_you": open_before - 3,  # and the revised one waits for someone else
        "agreed": 1,
        "compared": 2,
    }
    assert _api_figures(response.json()) == expected
    assert _card_figures(page) == expected


def test_with_overlap_one_left_for_you_is_the_open_count_and_an_undone_item_answered_again_counts_once(
    trained_dataset, reviewer
):
    _answer(trained_dataset, reviewer)
    _revise_to_the_other_label(_answer(trained_dataset, reviewer, accept=False))
    undone = _answer(trained_dataset, reviewer)
    review_revise(review_id=undone.pk, reviewer=reviewer, answer=None)
    _answer(trained_dataset, reviewer, accept=False)  # the same item, held for them again, answered afresh
    _skip_held_item(trained_dataset, reviewer)
    open_now = Item.objects.filter(dataset=trained_dataset, queue_state=Item.QueueState.OPEN).count()

    client = login(reviewer)
    body = client.get(PROGRESS.format(trained_dataset.pk)).json()
    card = _card_figures(client.get(reverse("annotations:review", args=[trained_dataset.pk])).content.decode())

    assert body == {
        "answers_today": 3,
        "open_count": open_now,
        "left_for_you": open_now,
        "agreement_so_far": {"agreed": 0, "compared": 0},  # answers that became gold alone are not compared
    }
    assert card == {**_api_figures(body), "left_for_you": None}  # the card names no "left for you" under overlap 1


def test_an_adjudicator_reads_their_own_progress(trained_dataset, adjudicator):
    _answer(trained_dataset, adjudicator)  # adjudicators may review too

    response = login(adjudicator).get(PROGRESS.format(trained_dataset.pk))

    assert response.status_code == 200
    assert response.json()["answers_today"] == 1


def test_reading_progress_changes_nothing_and_leases_nothing(trained_dataset, reviewer):
    client = login(reviewer)  # signing in is audited; reading progress is not
    events = AuditEvent.objects.count()

    response = client.get(PROGRESS.format(trained_dataset.pk))

    assert response.status_code == 200
    assert AuditEvent.objects.count() == events
    assert not Item.objects.filter(dataset=trained_dataset, leased_to=reviewer).exists()


@pytest.mark.parametrize("persona", ["auditor", "outsider", "non_member_reviewer", "model_admin"])
def test_who_may_not_ask_for_the_next_item_may_not_read_progress_either(request, trained_dataset, persona):
    client = login(request.getfixturevalue(persona))

    progress = client.get(PROGRESS.format(trained_dataset.pk))
    next_item = client.get(f"/api/datasets/{trained_dataset.pk}/next-item/")

    assert progress.status_code == next_item.status_code == 403


def test_a_reviewer_of_another_dataset_cannot_tell_a_missing_dataset_from_a_forbidden_one(
    trained_dataset, non_member_reviewer
):
    client = login(non_member_reviewer)

    forbidden = client.get(PROGRESS.format(trained_dataset.pk))
    absent = client.get(PROGRESS.format(987654321))

    assert forbidden.status_code == absent.status_code == 403
    assert forbidden.json() == absent.json()


def test_the_next_item_api_stays_lean_without_the_progress_figures(trained_dataset, reviewer):
    body = login(reviewer).get(f"/api/datasets/{trained_dataset.pk}/next-item/").json()

    assert set(body) == {"item", "selection_strategy", "selection_score", "blind", "blind_prediction_id"}


def test_the_progress_endpoint_is_in_the_openapi_schema_with_its_figures(db):
    schema = SchemaGenerator().get_schema(request=None, public=True)

    get = schema["paths"]["/api/datasets/{dataset_id}/progress/"]["get"]
    ref = get["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    output = schema["components"]["schemas"][ref.rpartition("/")[2]]
    assert set(output["properties"]) == {"answers_today", "open_count", "left_for_you", "agreement_so_far"}
    assert "equals open_count" in output["properties"]["left_for_you"]["description"]
    assert {"401", "403"} <= set(get["responses"])
