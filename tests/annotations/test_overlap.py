"""Overlap, consensus and adjudication (issue 8, point 2); "uncertain"; undo; time on item."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from annotations.adjudication import adjudication_submit, item_answers
from annotations.consensus import AnswerRow, consensus
from annotations.counters import counts_recount, dataset_counts
from annotations.models import Dataset, GoldLabel, Item, LabelClass, Review
from annotations.queue import STRATEGY_ADJUDICATION, adjudication_next_item, queue_next_item
from annotations.services import ReviewAnswer, review_revise, review_submit
from governance.models import AuditEvent
from tests.helpers import answer_for, make_user, other_label
from workflow_site.access import Role


def _overlap(dataset: Dataset, k: int) -> Dataset:
    Dataset.objects.filter(pk=dataset.pk).update(overlap=k)
    return Dataset.objects.get(pk=dataset.pk)


def _uncertain(item: Item) -> ReviewAnswer:
    return ReviewAnswer(label=None, shown_prediction_id=item.prediction_id, uncertain=True)


def _answer(dataset: Dataset, reviewer, *, accept: bool = True) -> Review:  # type: ignore[no-untyped-def]
    queued = queue_next_item(dataset=dataset, reviewer=reviewer)
    assert queued is not None
    return review_submit(item_id=queued.item.pk, reviewer=reviewer, answer=answer_for(queued.item, accept=accept))


def _counters(dataset_id: int) -> dict[str, int]:
    return {k: v for k, v in dataset_counts(dataset_ids=[dataset_id])[dataset_id].items() if v}


# --- consensus, pure ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rows", "overlap", "expected"),
    [
        ([], 1, ("open", 0, None)),
        ([(1, "accept", 7)], 1, ("done", 1, 7)),
        ([(1, "uncertain", None)], 1, ("adjudicate", 1, None)),
        ([(1, "accept", 7)], 2, ("open", 1, None)),
        ([(1, "accept", 7), (2, "correct", 7)], 2, ("done", 2, 7)),
        ([(1, "accept", 7), (2, "correct", 8)], 2, ("adjudicate", 2, None)),
        ([(1, "accept", 7), (2, "uncertain", None)], 2, ("adjudicate", 2, None)),
        # a skip never counts; a revision replaces; a withdrawal removes
        ([(1, "skip", None), (2, "accept", 7)], 2, ("open", 1, None)),
        ([(1, "accept", 7), (2, "label", 8), (2, "label", 7)], 2, ("done", 2, 7)),
        ([(1, "accept", 7), (2, "label", 7), (2, "withdrawn", None)], 2, ("open", 1, None)),
    ],
)
def test_consensus_derives_the_state_from_each_reviewers_current_answer(rows, overlap, expected):
    outcome = consensus([AnswerRow(*row) for row in rows], overlap=overlap)

    assert (outcome.state, outcome.answers_count, outcome.label_id) == expected


# --- overlap 2 through the services -------------------------------------------------------------------------


def test_with_overlap_two_the_first_answer_leaves_the_item_open_for_someone_else(trained_dataset, reviewer, reviewer2):
    dataset = _overlap(trained_dataset, 2)
    first = _answer(dataset, reviewer)
    item = Item.objects.get(pk=first.item_id)

    assert item.queue_state == Item.QueueState.OPEN
    assert item.answers_count == 1
    assert item.leased_to_id is None
    assert not GoldLabel.objects.filter(item=item, origin__in=["review", "consensus"]).exists()
    # never served again to the reviewer who answered it, but next in line for the other
    assert queue_next_item(dataset=dataset, reviewer=reviewer).item.pk != item.pk
    assert queue_next_item(dataset=dataset, reviewer=reviewer2).item.pk == item.pk


def test_two_agreeing_answers_derive_the_gold_label_by_consensus(trained_dataset, reviewer, reviewer2):
    dataset = _overlap(trained_dataset, 2)
    first = _answer(dataset, reviewer, accept=True)
    second = _answer(dataset, reviewer2, accept=True)

    assert second.item_id == first.item_id
    item = Item.objects.get(pk=first.item_id)
    assert item.queue_state == Item.QueueState.DONE
    gold = GoldLabel.objects.get(item=item)
    assert (gold.label_id, gold.origin, gold.review_id) == (first.label_id, GoldLabel.Origin.CONSENSUS, second.pk)
    event = AuditEvent.objects.filter(action="review.submitted").latest("id")
    assert event.after["item_state"] == "done" and event.after["answers"] == 2
    assert _counters(dataset.pk) == counts_recount(dataset_id=dataset.pk)


def test_two_disagreeing_answers_go_to_an_adjudicator_who_decides_with_a_reason(
    trained_dataset, reviewer, reviewer2, adjudicator
):
    dataset = _overlap(trained_dataset, 2)
    first = _answer(dataset, reviewer, accept=True)
    _answer(dataset, reviewer2, accept=False)
    item = Item.objects.get(pk=first.item_id)
    assert item.queue_state == Item.QueueState.ADJUDICATE
    assert not GoldLabel.objects.filter(item=item, origin__in=["review", "consensus"]).exists()

    queued = adjudication_next_item(dataset=dataset, adjudicator=adjudicator)
    assert queued.item.pk == item.pk and queued.strategy == STRATEGY_ADJUDICATION
    answers = item_answers(item=queued.item)
    assert [a.review.reviewer_id for a in answers] == [reviewer.pk, reviewer2.pk]
    with pytest.raises(ValidationError, match="reason"):
        adjudication_submit(item_id=item.pk, adjudicator=adjudicator, label=other_label(item), reason="  ")

    decision = adjudication_submit(
        item_id=item.pk, adjudicator=adjudicator, label=other_label(item), reason="margin is irregular"
    )

    item.refresh_from_db()
    assert item.queue_state == Item.QueueState.DONE and item.leased_to_id is None
    assert decision.decision == Review.Decision.ADJUDICATE and decision.reason == "margin is irregular"
    gold = GoldLabel.objects.get(item=item)
    assert (gold.label_id, gold.origin, gold.review_id) == (
        other_label(item).pk,
        GoldLabel.Origin.ADJUDICATION,
        decision.pk,
    )
    event = AuditEvent.objects.get(action="review.adjudicated")
    assert [a["reviewer"] for a in event.after["answers"]] == ["reviewer", "reviewer2"]
    assert event.reason == "margin is irregular"
    assert _counters(dataset.pk) == counts_recount(dataset_id=dataset.pk)
    assert adjudication_next_item(dataset=dataset, adjudicator=adjudicator) is None


def test_an_adjudicator_is_never_served_an_item_they_answered(trained_dataset, reviewer, adjudicator):
    dataset = _overlap(trained_dataset, 2)
    first = _answer(dataset, adjudicator, accept=True)  # adjudicators may review too
    queued = queue_next_item(dataset=dataset, reviewer=reviewer)
    assert queued.item.pk == first.item_id
    review_submit(item_id=queued.item.pk, reviewer=reviewer, answer=answer_for(queued.item, accept=False))

    assert adjudication_next_item(dataset=dataset, adjudicator=adjudicator) is None


def test_uncertain_is_an_answer_without_a_label_that_goes_to_adjudication(trained_dataset, reviewer, adjudicator):
    item = queue_next_item(dataset=trained_dataset, reviewer=reviewer).item

    review = review_submit(item_id=item.pk, reviewer=reviewer, answer=_uncertain(item))

    assert (review.decision, review.label_id) == (Review.Decision.UNCERTAIN, None)
    item.refresh_from_db()
    assert item.queue_state == Item.QueueState.ADJUDICATE
    assert adjudication_next_item(dataset=trained_dataset, adjudicator=adjudicator).item.pk == item.pk
    assert _counters(trained_dataset.pk) == counts_recount(dataset_id=trained_dataset.pk)


def test_a_reviewer_cannot_adjudicate_an_item_they_do_not_hold(trained_dataset, reviewer, reviewer2, adjudicator):
    dataset = _overlap(trained_dataset, 2)
    first = _answer(dataset, reviewer, accept=True)
    _answer(dataset, reviewer2, accept=False)
    item = Item.objects.get(pk=first.item_id)

    with pytest.raises(ValidationError, match="not handed to you"):
        adjudication_submit(item_id=item.pk, adjudicator=adjudicator, label=other_label(item), reason="x")
    assert not Review.objects.filter(item=item, decision=Review.Decision.ADJUDICATE).exists()


# --- time on item, undo --------------------------------------------------------------------------------------


def test_time_on_item_is_measured_by_the_server_from_the_card_being_served(trained_dataset, reviewer):
    item = queue_next_item(dataset=trained_dataset, reviewer=reviewer).item
    Item.objects.filter(pk=item.pk).update(lease_started_at=timezone.now() - timedelta(seconds=7))

    review = review_submit(item_id=item.pk, reviewer=reviewer, answer=answer_for(item))

    assert 7000 <= review.time_on_item_ms < 60_000


def test_undo_withdraws_the_answer_as_a_new_review_and_gives_the_item_back(trained_dataset, reviewer):
    first = _answer(trained_dataset, reviewer, accept=True)

    undo = review_revise(review_id=first.pk, reviewer=reviewer, answer=None)

    assert undo.decision == Review.Decision.WITHDRAWN and undo.supersedes_id == first.pk
    assert Review.objects.filter(pk=first.pk).exists()  # kept, never edited
    item = Item.objects.get(pk=first.item_id)
    assert item.queue_state == Item.QueueState.OPEN and item.leased_to_id == reviewer.pk
    assert queue_next_item(dataset=trained_dataset, reviewer=reviewer).item.pk == item.pk
    assert _counters(trained_dataset.pk) == counts_recount(dataset_id=trained_dataset.pk)
    assert AuditEvent.objects.filter(action="review.withdrawn", object_id=str(item.pk)).exists()
    # answered again: it is done again, with the new answer as its gold label
    again = review_submit(item_id=item.pk, reviewer=reviewer, answer=answer_for(item, accept=False))
    assert GoldLabel.objects.get(item=item).review_id == again.pk


def test_undo_is_refused_after_the_window_or_for_someone_elses_answer(trained_dataset, reviewer, reviewer2, settings):
    first = _answer(trained_dataset, reviewer)
    with pytest.raises(ValidationError, match="no such answer"):
        review_revise(review_id=first.pk, reviewer=reviewer2, answer=None)
    settings.LOUPE_REVISE_SECONDS = 0
    with pytest.raises(ValidationError, match="older"):
        review_revise(review_id=first.pk, reviewer=reviewer, answer=None)
    assert Review.objects.filter(item_id=first.item_id).count() == 1


# --- the counters stay exact through all of it ------------------------------------------------------------------


def test_counters_equal_a_fresh_count_after_a_random_mix_with_overlap_uncertain_undo_and_adjudication(
    trained_dataset, adjudicator
):
    dataset = _overlap(trained_dataset, 2)
    rng = random.Random(11)
    reviewers = [make_user(f"ov{n}", Role.REVIEWER, dataset=dataset) for n in range(4)]
    last: dict[int, Review] = {}
    labels = list(LabelClass.objects.filter(dataset=dataset))
    for step in range(50):
        move = rng.choice(["answer", "answer", "answer", "uncertain", "skip", "undo", "adjudicate"])
        reviewer = rng.choice(reviewers)
        if move == "undo" and reviewer.pk in last:
            try:
                review_revise(review_id=last.pop(reviewer.pk).pk, reviewer=reviewer, answer=None)
            except ValidationError:
                pass  # no longer their newest answer: refused, nothing written
        elif move == "adjudicate":
            queued = adjudication_next_item(dataset=dataset, adjudicator=adjudicator)
            if queued is not None:
                adjudication_submit(
                    item_id=queued.item.pk, adjudicator=adjudicator, label=rng.choice(labels), reason="r"
                )
        else:
            queued = queue_next_item(dataset=dataset, reviewer=reviewer)
            if queued is None:
                continue
            item = queued.item
            if move == "uncertain":
                answer = _uncertain(item)
            elif move == "skip":
                answer = ReviewAnswer(label=None, shown_prediction_id=item.prediction_id)
            else:
                answer = ReviewAnswer(label=rng.choice(labels), shown_prediction_id=item.prediction_id)
            review = review_submit(item_id=item.pk, reviewer=reviewer, answer=answer)
            if move != "skip":
                last[reviewer.pk] = review
        assert _counters(dataset.pk) == counts_recount(dataset_id=dataset.pk), f"after step {step}: {move}"
    assert Item.objects.filter(dataset=dataset, answers_count__gt=2).count() == 0


# --- progress on the review page ----------------------------------------------------------------------------


def test_the_card_says_how_many_items_are_left_for_you_under_overlap(trained_dataset, reviewer, reviewer2):
    from django.urls import reverse

    from tests.helpers import login

    dataset = _overlap(trained_dataset, 2)
    open_before = Item.objects.filter(dataset=dataset, queue_state=Item.QueueState.OPEN).count()
    _answer(dataset, reviewer)
    _answer(dataset, reviewer)

    html = login(reviewer).get(reverse("annotations:review", args=[dataset.pk])).content.decode()

    assert f"{open_before} awaiting review ({open_before - 2} left for you)" in html


def test_the_review_page_shows_your_agreement_with_gold_settled_with_others(
    trained_dataset, reviewer, reviewer2, adjudicator
):
    from django.urls import reverse

    from annotations.selectors import reviewer_agreement_so_far
    from tests.helpers import login

    dataset = _overlap(trained_dataset, 2)
    agree = _answer(dataset, reviewer, accept=True)
    _answer(dataset, reviewer2, accept=True)  # consensus: agreed
    disputed = _answer(dataset, reviewer, accept=True)
    _answer(dataset, reviewer2, accept=False)
    queued = adjudication_next_item(dataset=dataset, adjudicator=adjudicator)
    assert queued.item.pk == disputed.item_id
    adjudication_submit(item_id=disputed.item_id, adjudicator=adjudicator, label=other_label(queued.item), reason="r")
    assert agree.item_id != disputed.item_id

    assert reviewer_agreement_so_far(dataset=dataset, reviewer=reviewer) == (1, 2)
    assert reviewer_agreement_so_far(dataset=dataset, reviewer=reviewer2) == (2, 2)
    html = login(reviewer).get(reverse("annotations:review", args=[dataset.pk])).content.decode()
    assert "you agree with settled gold on 1 of 2 (50%)" in html


# --- under overlap, the second reviewer sees nothing of the first's answer ------------------------------------


def test_the_second_reviewers_card_and_next_item_api_show_nothing_of_the_first_reviewers_answer(
    trained_dataset, reviewer2
):
    import json

    from django.urls import reverse

    from tests.helpers import login

    Dataset.objects.filter(pk=trained_dataset.pk).update(
        overlap=2, reason_codes=[{"code": "zq_code", "text": "Zq irregular outline"}]
    )
    dataset = Dataset.objects.get(pk=trained_dataset.pk)
    first_reviewer = make_user("ada_first_eyes", Role.REVIEWER, dataset=dataset)
    item = queue_next_item(dataset=dataset, reviewer=first_reviewer).item
    correction = other_label(item)
    first = review_submit(
        item_id=item.pk,
        reviewer=first_reviewer,
        answer=ReviewAnswer(
            label=correction,
            shown_prediction_id=item.prediction_id,
            reason="zq-note: the outline looked spiculated",
            reason_code="zq_code",
            flagged=True,
        ),
    )
    client = login(reviewer2)

    page = client.get(reverse("annotations:review", args=[dataset.pk])).content.decode()
    api = client.get(f"/api/datasets/{dataset.pk}/next-item/").json()

    # The same item, served to the second reviewer, on the card and through the API.
    card = page[page.index('<section id="card"') :]
    assert f"/review/{item.pk}/" in card and api["item"]["id"] == item.pk
    served = card + json.dumps(api)
    for trace in ("ada_first_eyes", "zq-note", "spiculated", f"reviews/{first.pk}/", "(your answer)"):
        assert trace not in served, trace
    # Labels and reason codes are offered, none picked: not the first reviewer's label, code or flag.
    assert " checked" not in card
    assert f'value="{correction.name}"' in card and 'value="zq_code"' in card
    # The API's answer is the item and why the queue picked it: no field about anyone's answers.
    assert set(api) == {"item", "selection_strategy", "selection_score", "blind", "blind_prediction_id"}
    assert set(api["item"]) == {
        "id",
        "external_id",
        "values",
        "source_file",
        "source_row",
        "observed_at",
        "prediction_id",
        "predicted_label",
        "predicted_confidence",
        "predicted_probabilities",
        "explanation",
        "lease_expires_at",
        "purged_at",
    }
