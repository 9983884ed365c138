"""review_submit (annotations/services.py): one immutable review per answer, its gold label and audit event, skips,
and the guards that refuse an answer and write nothing. (The import service: test_import.py.)"""

from __future__ import annotations

from unittest import mock

import pytest
from django.core.exceptions import ValidationError

from annotations import queue
from annotations.models import Dataset, GoldLabel, Item, LabelClass, Review
from annotations.queue import STRATEGY_LEAST_CONFIDENCE, STRATEGY_UNSCORED, queue_next_item
from annotations.services import ReviewAnswer, review_submit
from governance.models import AuditEvent
from tests.helpers import answer_for, other_label, review_counts, review_next, synthetic_rows

# --- One review -----------------------------------------------------------------------------------------------


def test_reviewer_agreeing_with_the_prediction_is_recorded_as_accept(trained_dataset, reviewer, broker):
    queued = queue_next_item(dataset=trained_dataset, reviewer=reviewer)
    item = queued.item

    review = review_submit(item_id=item.pk, reviewer=reviewer, answer=answer_for(item, accept=True))

    assert review.decision == Review.Decision.ACCEPT
    assert review.label_id == item.predicted_label_id
    assert review.shown_label_id == item.predicted_label_id


def test_reviewer_choosing_another_label_is_recorded_as_correct(trained_dataset, reviewer, broker):
    item = queue_next_item(dataset=trained_dataset, reviewer=reviewer).item
    other = other_label(item)

    review = review_submit(
        item_id=item.pk, reviewer=reviewer, answer=answer_for(item, accept=False, reason=" looks benign ")
    )

    assert review.decision == Review.Decision.CORRECT
    assert review.label == other
    assert review.shown_label_id == item.predicted_label_id != other.pk
    assert review.reason == "looks benign"
    gold = GoldLabel.objects.get(item=item)
    assert gold.label == other


def test_review_stores_what_was_shown_and_why_the_item_was_picked(trained_dataset, reviewer, broker):
    Dataset.objects.filter(pk=trained_dataset.pk).update(guideline_version="2024-07b")
    queued = queue_next_item(dataset=trained_dataset, reviewer=reviewer)
    item = queued.item

    review = review_submit(item_id=item.pk, reviewer=reviewer, answer=answer_for(item))

    review.refresh_from_db()
    assert review.selection_strategy == STRATEGY_LEAST_CONFIDENCE == queued.strategy
    assert review.selection_score == pytest.approx(round(1 - item.predicted_confidence, 6))
    assert review.selection_score == pytest.approx(queued.score)
    assert review.guideline_version == "2024-07b"
    assert review.shown_prediction_id == item.prediction_id
    assert review.shown_label_id == item.predicted_label_id
    assert review.shown_confidence == pytest.approx(item.predicted_confidence)
    assert review.mode == Review.Mode.OPEN
    assert review.reviewer == reviewer


def test_review_makes_a_gold_label_of_origin_review_and_closes_the_item(trained_dataset, reviewer, broker):
    item = queue_next_item(dataset=trained_dataset, reviewer=reviewer).item
    assert not GoldLabel.objects.filter(item=item).exists()

    review = review_submit(item_id=item.pk, reviewer=reviewer, answer=answer_for(item))

    gold = GoldLabel.objects.get(item=item)
    assert (gold.origin, gold.review, gold.label_id, gold.dataset_id) == (
        GoldLabel.Origin.REVIEW,
        review,
        item.predicted_label_id,
        trained_dataset.pk,
    )
    item.refresh_from_db()
    assert item.queue_state == Item.QueueState.DONE
    assert item.leased_to is None and item.lease_expires_at is None
    assert queue_next_item(dataset=trained_dataset, reviewer=reviewer).item.pk != item.pk


def test_review_writes_a_review_submitted_audit_event_with_before_and_after(trained_dataset, reviewer, broker):
    item = queue_next_item(dataset=trained_dataset, reviewer=reviewer).item
    before = AuditEvent.objects.count()

    review = review_submit(item_id=item.pk, reviewer=reviewer, answer=answer_for(item, accept=False, reason="why"))

    assert AuditEvent.objects.count() == before + 1
    event = AuditEvent.objects.get(action="review.submitted")
    assert event.actor == reviewer
    assert (event.object_type, event.object_id, event.dataset_id) == ("item", str(item.pk), trained_dataset.pk)
    assert event.before == {"gold_label": None}
    assert event.after["review_id"] == review.pk
    assert event.after["decision"] == Review.Decision.CORRECT
    assert event.after["label"] == review.label.name
    assert event.after["shown_label"] == item.predicted_label.name
    assert event.after["shown_prediction_id"] == item.prediction_id
    assert event.after["selection"]["strategy"] == STRATEGY_LEAST_CONFIDENCE
    assert event.after["guideline_version"] == trained_dataset.guideline_version
    assert event.reason == "why"


def test_review_and_its_audit_event_roll_back_together(trained_dataset, reviewer, broker):
    """A failure inside the review's transaction (here: the audit append) undoes the review and the gold label."""
    item = queue_next_item(dataset=trained_dataset, reviewer=reviewer).item
    before = review_counts()

    with mock.patch("annotations.services.audit_record", side_effect=RuntimeError("the audit append failed")):
        with pytest.raises(RuntimeError):
            review_submit(item_id=item.pk, reviewer=reviewer, answer=answer_for(item))

    assert review_counts() == before
    assert not AuditEvent.objects.filter(action="review.submitted").exists()
    item.refresh_from_db()
    assert item.queue_state == Item.QueueState.OPEN
    assert item.leased_to == reviewer


def test_item_without_a_prediction_is_labelled_not_accepted(trained_dataset, reviewer, import_rows, broker):
    import_rows(synthetic_rows(1, start=900, labelled=False), name="late.csv")
    item = Item.objects.get(external_id="t00900")
    assert item.prediction_id is None
    label = LabelClass.objects.get(dataset=trained_dataset, name="benign")
    Item.objects.filter(pk=item.pk).update(leased_to=reviewer)  # as the queue would, once it reaches it

    review = review_submit(
        item_id=item.pk, reviewer=reviewer, answer=ReviewAnswer(label=label, shown_prediction_id=None)
    )

    assert review.decision == Review.Decision.LABEL
    assert review.shown_label is None
    assert (review.selection_strategy, review.selection_score) == (STRATEGY_UNSCORED, None)
    assert GoldLabel.objects.get(item=item).origin == GoldLabel.Origin.REVIEW


def test_label_from_another_dataset_is_refused(trained_dataset, reviewer, broker):
    other = Dataset.objects.create(name="Other", slug="other")
    foreign = LabelClass.objects.create(dataset=other, position=0, name="malignant")
    item = queue_next_item(dataset=trained_dataset, reviewer=reviewer).item
    before = review_counts()

    with pytest.raises(ValidationError):
        review_submit(
            item_id=item.pk,
            reviewer=reviewer,
            answer=ReviewAnswer(label=foreign, shown_prediction_id=item.prediction_id),
        )

    assert review_counts() == before


# --- Skips ----------------------------------------------------------------------------------------------------


def test_skip_keeps_the_item_open_records_a_skip_and_is_not_offered_to_the_same_reviewer_for_now(
    trained_dataset, reviewer, reviewer2
):
    item = queue_next_item(dataset=trained_dataset, reviewer=reviewer).item

    review = review_submit(
        item_id=item.pk,
        reviewer=reviewer,
        answer=ReviewAnswer(label=None, shown_prediction_id=item.prediction_id, reason="unsure"),
    )

    assert (review.decision, review.label, review.reason) == (Review.Decision.SKIP, None, "unsure")
    item.refresh_from_db()
    assert item.queue_state == Item.QueueState.OPEN
    assert item.leased_to is None
    assert not GoldLabel.objects.filter(item=item).exists()
    event = AuditEvent.objects.get(action="review.skipped")
    assert (event.actor, event.object_id, event.after) == (
        reviewer,
        str(item.pk),
        {"review_id": review.pk, "reason_code": "", "flagged": False},
    )

    assert queue_next_item(dataset=trained_dataset, reviewer=reviewer).item.pk != item.pk
    # ...but someone else still gets it: it is the least confident item left.
    assert queue_next_item(dataset=trained_dataset, reviewer=reviewer2).item.pk == item.pk


# --- Answers that are refused ---------------------------------------------------------------------------------


def test_a_closed_item_cannot_be_reviewed_again(trained_dataset, reviewer, broker):
    review = review_next(trained_dataset, reviewer)
    item = review.item
    before = review_counts()

    with pytest.raises(ValidationError, match="already been reviewed"):
        review_submit(item_id=item.pk, reviewer=reviewer, answer=answer_for(item, accept=False))

    assert review_counts() == before
    assert GoldLabel.objects.get(item=item).review == review


def test_reviewer_cannot_submit_item_leased_to_someone_else(trained_dataset, reviewer, reviewer2, broker):
    item = queue_next_item(dataset=trained_dataset, reviewer=reviewer2).item
    lease = Item.objects.values_list("leased_to", "lease_expires_at").get(pk=item.pk)
    before = review_counts()

    with pytest.raises(ValidationError, match="being reviewed by someone else"):
        review_submit(item_id=item.pk, reviewer=reviewer, answer=answer_for(item))

    assert review_counts() == before
    assert Item.objects.values_list("leased_to", "lease_expires_at").get(pk=item.pk) == lease
    assert not AuditEvent.objects.filter(action__startswith="review.").exists()


def test_stale_shown_prediction_is_rejected_and_nothing_is_written(trained_dataset, reviewer, broker):
    item = queue_next_item(dataset=trained_dataset, reviewer=reviewer).item
    shown = item.prediction_id
    # The champion re-predicts the item while the reviewer is looking at the old card.
    Item.objects.filter(pk=item.pk).update(prediction_id=shown + 10_000, predicted_label=other_label(item))
    before = review_counts()

    with pytest.raises(ValidationError, match="prediction for this item changed"):
        review_submit(
            item_id=item.pk,
            reviewer=reviewer,
            answer=ReviewAnswer(label=item.predicted_label, shown_prediction_id=shown),
        )

    assert review_counts() == before
    item.refresh_from_db()
    assert item.queue_state == Item.QueueState.OPEN
    assert item.leased_to == reviewer


def test_a_skipped_item_comes_back_to_the_same_reviewer_later_and_can_then_be_answered(
    trained_dataset, reviewer, broker, monkeypatch
):
    item = queue_next_item(dataset=trained_dataset, reviewer=reviewer).item
    review_submit(
        item_id=item.pk, reviewer=reviewer, answer=ReviewAnswer(label=None, shown_prediction_id=item.prediction_id)
    )
    other = queue_next_item(dataset=trained_dataset, reviewer=reviewer).item
    assert other.pk != item.pk  # not now
    review_submit(item_id=other.pk, reviewer=reviewer, answer=answer_for(other))

    # Once LOUPE_SKIP_RETURN_SECONDS have passed (reviews are immutable, so the wait is shortened instead),
    # the skipped item, still the least confident, is theirs again.
    monkeypatch.setattr(queue, "SKIP_RETURN_SECONDS", 0)
    back = queue_next_item(dataset=trained_dataset, reviewer=reviewer).item
    assert back.pk == item.pk
    answered = review_submit(item_id=item.pk, reviewer=reviewer, answer=answer_for(back))
    assert answered.decision != Review.Decision.SKIP
    assert queue_next_item(dataset=trained_dataset, reviewer=reviewer).item.pk != item.pk  # answered: never again


def test_an_item_undone_and_then_skipped_comes_back_to_the_same_reviewer_later(
    trained_dataset, reviewer, broker, monkeypatch
):
    from annotations.services import review_revise

    item = queue_next_item(dataset=trained_dataset, reviewer=reviewer).item
    answer = review_submit(item_id=item.pk, reviewer=reviewer, answer=answer_for(item))
    review_revise(review_id=answer.pk, reviewer=reviewer, answer=None)  # undo: the item is theirs again
    assert queue_next_item(dataset=trained_dataset, reviewer=reviewer).item.pk == item.pk
    review_submit(
        item_id=item.pk, reviewer=reviewer, answer=ReviewAnswer(label=None, shown_prediction_id=item.prediction_id)
    )
    assert queue_next_item(dataset=trained_dataset, reviewer=reviewer).item.pk != item.pk  # a skip: not now

    monkeypatch.setattr(queue, "SKIP_RETURN_SECONDS", 0)
    Item.objects.filter(leased_to=reviewer).update(leased_to=None, lease_expires_at=None)
    assert queue_next_item(dataset=trained_dataset, reviewer=reviewer).item.pk == item.pk  # later: theirs again
