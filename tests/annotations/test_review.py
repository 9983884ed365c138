"""The review loop: queue and leases, one immutable review per answer, its audit event, and the retraining policy."""

from __future__ import annotations

import re
from datetime import timedelta
from unittest import mock

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from kombu.exceptions import OperationalError

from annotations.models import Dataset, GoldLabel, Item, LabelClass, Review
from annotations.queue import STRATEGY_LEAST_CONFIDENCE, STRATEGY_UNSCORED, queue_next_item
from annotations.services import ReviewAnswer, review_submit
from annotations.signals import gold_labels_changed
from governance.models import AuditEvent
from models_app.models import ModelVersion, TrainingRun
from models_app.services import training_runs_sweep
from tests.conftest import login, synthetic_rows

# Queries for one htmx review POST (submit + next card), measured; see test_review_loop_query_count_*.
REVIEW_LOOP_QUERIES = 31


def _counts() -> dict[str, int]:
    return {
        "reviews": Review.objects.count(),
        "gold_labels": GoldLabel.objects.count(),
        "audit_events": AuditEvent.objects.count(),
        "training_runs": TrainingRun.objects.count(),
        "done": Item.objects.filter(queue_state=Item.QueueState.DONE).count(),
    }


def _other_label(item: Item) -> LabelClass:
    return LabelClass.objects.filter(dataset_id=item.dataset_id).exclude(pk=item.predicted_label_id).first()


def _answer(item: Item, *, accept: bool = True, reason: str = "") -> ReviewAnswer:
    label = item.predicted_label if accept else _other_label(item)
    return ReviewAnswer(label=label, shown_prediction_id=item.prediction_id, reason=reason)


def _review_next(dataset: Dataset, reviewer, *, accept: bool = True) -> Review:
    queued = queue_next_item(dataset=dataset, reviewer=reviewer)
    assert queued is not None
    return review_submit(item_id=queued.item.pk, reviewer=reviewer, answer=_answer(queued.item, accept=accept))


@pytest.fixture
def broker():
    """The only mock: the broker call that hands a training run to a worker."""
    with mock.patch("models_app.tasks.training_run_execute.apply_async") as apply_async:
        yield apply_async


# --- One review --------------------------------------------------------------------------------------------


def test_reviewer_agreeing_with_the_prediction_is_recorded_as_accept(trained_dataset, reviewer, broker):
    queued = queue_next_item(dataset=trained_dataset, reviewer=reviewer)
    item = queued.item

    review = review_submit(item_id=item.pk, reviewer=reviewer, answer=_answer(item, accept=True))

    assert review.decision == Review.Decision.ACCEPT
    assert review.label_id == item.predicted_label_id
    assert review.shown_label_id == item.predicted_label_id


def test_reviewer_choosing_another_label_is_recorded_as_correct(trained_dataset, reviewer, broker):
    item = queue_next_item(dataset=trained_dataset, reviewer=reviewer).item
    other = _other_label(item)

    review = review_submit(
        item_id=item.pk, reviewer=reviewer, answer=_answer(item, accept=False, reason=" looks benign ")
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

    review = review_submit(item_id=item.pk, reviewer=reviewer, answer=_answer(item))

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


def test_queue_offers_the_least_confident_prediction_first(trained_dataset, reviewer):
    queued = queue_next_item(dataset=trained_dataset, reviewer=reviewer)

    lowest = (
        Item.objects.filter(dataset=trained_dataset, queue_state=Item.QueueState.OPEN)
        .order_by("predicted_confidence", "id")
        .first()
    )
    assert queued.item.pk == lowest.pk
    assert queued.strategy == STRATEGY_LEAST_CONFIDENCE


def test_review_makes_a_gold_label_of_origin_review_and_closes_the_item(trained_dataset, reviewer, broker):
    item = queue_next_item(dataset=trained_dataset, reviewer=reviewer).item
    assert not GoldLabel.objects.filter(item=item).exists()

    review = review_submit(item_id=item.pk, reviewer=reviewer, answer=_answer(item))

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

    review = review_submit(item_id=item.pk, reviewer=reviewer, answer=_answer(item, accept=False, reason="why"))

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
    before = _counts()

    with mock.patch("annotations.services.audit_record", side_effect=RuntimeError("the audit append failed")):
        with pytest.raises(RuntimeError):
            review_submit(item_id=item.pk, reviewer=reviewer, answer=_answer(item))

    assert _counts() == before
    assert not AuditEvent.objects.filter(action="review.submitted").exists()
    item.refresh_from_db()
    assert item.queue_state == Item.QueueState.OPEN
    assert item.leased_to == reviewer


def test_review_is_saved_even_when_the_retraining_policy_check_raises(
    trained_dataset, reviewer, broker, django_capture_on_commit_callbacks
):
    """The policy check runs after the review commits: a bug in models_app cannot undo a reviewer's answer."""
    item = queue_next_item(dataset=trained_dataset, reviewer=reviewer).item
    client = login(reviewer)

    with mock.patch("models_app.services.retraining_policy_check", side_effect=RuntimeError("policy bug")) as check:
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                reverse("annotations:review_submit", args=[trained_dataset.pk, item.pk]),
                {"label": item.predicted_label.name, "shown_prediction": item.prediction_id},
                HTTP_HX_REQUEST="true",
            )

    assert check.called, "the policy check ran (after commit) and raised"
    assert response.status_code == 200
    review = Review.objects.get(item=item)
    assert review.decision == Review.Decision.ACCEPT
    assert GoldLabel.objects.get(item=item).review == review
    assert AuditEvent.objects.filter(action="review.submitted", object_id=str(item.pk)).exists()


def test_policy_check_runs_outside_the_review_transaction(trained_dataset, reviewer, broker):
    """Nothing is checked while the review's transaction is open; the check waits for the commit."""
    item = queue_next_item(dataset=trained_dataset, reviewer=reviewer).item
    seen = []
    gold_labels_changed.connect(
        lambda **kw: seen.append(kw["dataset_id"]), dispatch_uid="test-after-commit", weak=False
    )
    try:
        review_submit(item_id=item.pk, reviewer=reviewer, answer=_answer(item))
        assert seen == [], "a receiver ran inside the review's transaction"
    finally:
        gold_labels_changed.disconnect(dispatch_uid="test-after-commit")


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
    before = _counts()

    with pytest.raises(ValidationError):
        review_submit(
            item_id=item.pk,
            reviewer=reviewer,
            answer=ReviewAnswer(label=foreign, shown_prediction_id=item.prediction_id),
        )

    assert _counts() == before


# --- Skips --------------------------------------------------------------------------------------------------


def test_skip_keeps_the_item_open_records_a_skip_and_is_not_offered_to_the_same_reviewer_again(
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
    assert (event.actor, event.object_id, event.after) == (reviewer, str(item.pk), {"review_id": review.pk})

    assert queue_next_item(dataset=trained_dataset, reviewer=reviewer).item.pk != item.pk
    # ...but someone else still gets it: it is the least confident item left.
    assert queue_next_item(dataset=trained_dataset, reviewer=reviewer2).item.pk == item.pk


# --- Immutability -----------------------------------------------------------------------------------------


def test_reviews_are_immutable(trained_dataset, reviewer, broker):
    review = _review_next(trained_dataset, reviewer)
    review.reason = "changed my mind"
    review.decision = Review.Decision.CORRECT

    with pytest.raises(ValueError, match="immutable"):
        review.save()

    review.refresh_from_db()
    assert review.reason == ""
    assert review.decision == Review.Decision.ACCEPT


def test_a_closed_item_cannot_be_reviewed_again(trained_dataset, reviewer, broker):
    review = _review_next(trained_dataset, reviewer)
    item = review.item
    before = _counts()

    with pytest.raises(ValidationError, match="already been reviewed"):
        review_submit(item_id=item.pk, reviewer=reviewer, answer=_answer(item, accept=False))

    assert _counts() == before
    assert GoldLabel.objects.get(item=item).review == review


# --- Leases ----------------------------------------------------------------------------------------------


def test_two_reviewers_are_handed_different_items(trained_dataset, reviewer, reviewer2):
    first = queue_next_item(dataset=trained_dataset, reviewer=reviewer).item
    second = queue_next_item(dataset=trained_dataset, reviewer=reviewer2).item

    assert first.pk != second.pk
    leases = dict(Item.objects.filter(pk__in=[first.pk, second.pk]).values_list("pk", "leased_to"))
    assert leases == {first.pk: reviewer.pk, second.pk: reviewer2.pk}


def test_same_reviewer_asking_twice_keeps_the_item_they_hold(trained_dataset, reviewer):
    first = queue_next_item(dataset=trained_dataset, reviewer=reviewer).item
    again = queue_next_item(dataset=trained_dataset, reviewer=reviewer).item

    assert again.pk == first.pk
    assert Item.objects.filter(leased_to=reviewer).count() == 1


def test_expired_lease_lets_another_reviewer_take_the_item(trained_dataset, reviewer, reviewer2, broker):
    item = queue_next_item(dataset=trained_dataset, reviewer=reviewer).item
    Item.objects.filter(pk=item.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))

    taken = queue_next_item(dataset=trained_dataset, reviewer=reviewer2).item

    assert taken.pk == item.pk
    item.refresh_from_db()
    assert item.leased_to == reviewer2
    assert item.lease_expires_at > timezone.now()
    # The first reviewer's late answer no longer counts.
    before = _counts()
    with pytest.raises(ValidationError, match="someone else"):
        review_submit(item_id=item.pk, reviewer=reviewer, answer=_answer(item))
    assert _counts() == before
    # The new holder can answer.
    assert review_submit(item_id=item.pk, reviewer=reviewer2, answer=_answer(item)).reviewer == reviewer2


def test_reviewer_cannot_submit_item_leased_to_someone_else(trained_dataset, reviewer, reviewer2, broker):
    item = queue_next_item(dataset=trained_dataset, reviewer=reviewer2).item
    lease = Item.objects.values_list("leased_to", "lease_expires_at").get(pk=item.pk)
    before = _counts()

    with pytest.raises(ValidationError, match="being reviewed by someone else"):
        review_submit(item_id=item.pk, reviewer=reviewer, answer=_answer(item))

    assert _counts() == before
    assert Item.objects.values_list("leased_to", "lease_expires_at").get(pk=item.pk) == lease
    assert not AuditEvent.objects.filter(action__startswith="review.").exists()


def test_stale_shown_prediction_is_rejected_and_nothing_is_written(trained_dataset, reviewer, broker):
    item = queue_next_item(dataset=trained_dataset, reviewer=reviewer).item
    shown = item.prediction_id
    # The champion re-predicts the item while the reviewer is looking at the old card.
    Item.objects.filter(pk=item.pk).update(prediction_id=shown + 10_000, predicted_label=_other_label(item))
    before = _counts()

    with pytest.raises(ValidationError, match="prediction for this item changed"):
        review_submit(
            item_id=item.pk,
            reviewer=reviewer,
            answer=ReviewAnswer(label=item.predicted_label, shown_prediction_id=shown),
        )

    assert _counts() == before
    item.refresh_from_db()
    assert item.queue_state == Item.QueueState.OPEN
    assert item.leased_to == reviewer


# --- The views -----------------------------------------------------------------------------------------


def _card_item(response) -> Item | None:
    """The item on a returned card, read from its form's action (partials carry no response.context)."""
    found = re.search(r'hx-post="[^"]*/review/(\d+)/"', response.content.decode())
    return Item.objects.get(pk=int(found.group(1))) if found else None


def _post(client, dataset: Dataset, item: Item, *, htmx: bool, label: str | None = None, action: str = "submit"):
    data = {
        "shown_prediction": item.prediction_id or "",
        "label": label or item.predicted_label.name,
        "action": action,
        "reason": "",
    }
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    return client.post(reverse("annotations:review_submit", args=[dataset.pk, item.pk]), data, **headers)


def test_htmx_submit_returns_the_next_card_partial(trained_dataset, reviewer, broker):
    client = login(reviewer)
    item = queue_next_item(dataset=trained_dataset, reviewer=reviewer).item

    response = _post(client, trained_dataset, item, htmx=True)

    assert response.status_code == 200
    page = response.content.decode()
    assert "<html" not in page
    assert page.lstrip().startswith('<section id="card"')
    next_item = _card_item(response)
    assert next_item.pk != item.pk
    assert f"<code>{next_item.external_id}</code>" in page
    assert reverse("annotations:review_submit", args=[trained_dataset.pk, next_item.pk]) in page
    assert Review.objects.get(item=item).decision == Review.Decision.ACCEPT


def test_plain_submit_redirects_to_the_review_page(trained_dataset, reviewer, broker):
    client = login(reviewer)
    item = queue_next_item(dataset=trained_dataset, reviewer=reviewer).item

    response = _post(client, trained_dataset, item, htmx=False, label=_other_label(item).name)

    assert response.status_code == 302
    assert response["Location"] == reverse("annotations:review", args=[trained_dataset.pk])
    assert Review.objects.get(item=item).decision == Review.Decision.CORRECT
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert "<html" in page.content.decode()


def test_htmx_skip_returns_another_item(trained_dataset, reviewer):
    client = login(reviewer)
    item = queue_next_item(dataset=trained_dataset, reviewer=reviewer).item

    response = _post(client, trained_dataset, item, htmx=True, action="skip")

    assert response.status_code == 200
    assert _card_item(response).pk != item.pk
    assert Review.objects.get(item=item).decision == Review.Decision.SKIP


def test_htmx_submit_of_someone_elses_item_shows_the_error_on_a_card(trained_dataset, reviewer, reviewer2, broker):
    item = queue_next_item(dataset=trained_dataset, reviewer=reviewer2).item
    client = login(reviewer)
    before = _counts()

    response = _post(client, trained_dataset, item, htmx=True)

    assert response.status_code == 200
    assert "being reviewed by someone else" in response.content.decode()
    assert _card_item(response).pk != item.pk
    assert _counts() == before


def test_plain_submit_with_a_stale_prediction_redirects_with_a_message(trained_dataset, reviewer, broker):
    client = login(reviewer)
    item = queue_next_item(dataset=trained_dataset, reviewer=reviewer).item
    Item.objects.filter(pk=item.pk).update(prediction_id=item.prediction_id + 10_000)
    before = _counts()

    response = _post(client, trained_dataset, item, htmx=False)

    assert response.status_code == 302
    assert _counts() == before
    page = client.get(response["Location"]).content.decode()
    assert "prediction for this item changed" in page


# --- The retraining policy and the outbox ----------------------------------------------------------------


def _policy_runs(dataset: Dataset):
    return TrainingRun.objects.filter(dataset=dataset, trigger=TrainingRun.Trigger.POLICY)


def test_fifth_review_queues_exactly_one_policy_training_run(
    trained_dataset, reviewer, django_capture_on_commit_callbacks, broker
):
    for _ in range(4):
        with django_capture_on_commit_callbacks(execute=True):
            _review_next(trained_dataset, reviewer)
    assert not _policy_runs(trained_dataset).exists()
    broker.assert_not_called()

    with django_capture_on_commit_callbacks(execute=True):
        _review_next(trained_dataset, reviewer)

    run = _policy_runs(trained_dataset).get()
    broker.assert_called_once()
    assert broker.call_args.kwargs["args"] == [run.pk]
    assert run.status == TrainingRun.Status.QUEUED
    assert run.requested_by is None
    assert "5 new gold labels" in run.reason
    assert run.dispatched_at is not None
    assert AuditEvent.objects.filter(action="training.requested", object_id=str(run.pk)).count() == 1

    # While that run is queued, more reviews do not queue another.
    with django_capture_on_commit_callbacks(execute=True):
        _review_next(trained_dataset, reviewer)
    assert _policy_runs(trained_dataset).count() == 1
    broker.assert_called_once()


def test_skips_do_not_count_towards_the_policy(trained_dataset, reviewer, django_capture_on_commit_callbacks, broker):
    for _ in range(6):
        item = queue_next_item(dataset=trained_dataset, reviewer=reviewer).item
        with django_capture_on_commit_callbacks(execute=True):
            review_submit(
                item_id=item.pk,
                reviewer=reviewer,
                answer=ReviewAnswer(label=None, shown_prediction_id=item.prediction_id),
            )

    assert not _policy_runs(trained_dataset).exists()
    broker.assert_not_called()


def test_no_training_run_exists_when_the_fifth_review_rolls_back(
    trained_dataset, reviewer, django_capture_on_commit_callbacks, broker
):
    for _ in range(4):
        with django_capture_on_commit_callbacks(execute=True):
            _review_next(trained_dataset, reviewer)
    item = queue_next_item(dataset=trained_dataset, reviewer=reviewer).item
    reviews = Review.objects.count()

    # The fifth review fails inside its transaction (its audit append), so nothing is sent after commit.
    with (
        mock.patch("annotations.services.audit_record", side_effect=RuntimeError("late failure")),
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
    ):
        review_submit(item_id=item.pk, reviewer=reviewer, answer=_answer(item))

    assert callbacks == []
    assert not _policy_runs(trained_dataset).exists()
    assert not AuditEvent.objects.filter(action="training.requested", actor__isnull=True).exists()
    assert Review.objects.count() == reviews
    broker.assert_not_called()


def test_broker_outage_keeps_the_review_and_the_run_is_sent_by_the_sweep(
    trained_dataset, reviewer, django_capture_on_commit_callbacks, broker
):
    broker.side_effect = OperationalError("Connection refused")
    for _ in range(5):
        with django_capture_on_commit_callbacks(execute=True):
            review = _review_next(trained_dataset, reviewer)

    assert Review.objects.filter(pk=review.pk).exists()
    assert Item.objects.get(pk=review.item_id).queue_state == Item.QueueState.DONE
    run = _policy_runs(trained_dataset).get()
    assert broker.call_count == 1
    assert (run.status, run.dispatched_at) == (TrainingRun.Status.QUEUED, None)

    # The broker comes back; the beat sweep resends the run.
    broker.side_effect = None
    broker.reset_mock()
    sent = training_runs_sweep(now=timezone.now() + timedelta(seconds=30))

    assert sent == 1
    broker.assert_called_once()
    assert broker.call_args.kwargs["args"] == [run.pk]
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.QUEUED
    assert run.dispatched_at is not None

    # A run that was just sent is not sent again by the next sweep.
    broker.reset_mock()
    assert training_runs_sweep(now=timezone.now() + timedelta(seconds=31)) == 0
    broker.assert_not_called()


# --- Query count ---------------------------------------------------------------------------------------


def _grow_open_pool(dataset: Dataset, import_rows, extra: int) -> None:
    """Add `extra` open items, predicted by the champion like the others."""
    from models_app.prediction import open_item_ids, predictions_create

    import_rows(synthetic_rows(extra, start=1000, labelled=False), name="more.csv")
    champion = ModelVersion.objects.get(dataset=dataset, stage=ModelVersion.Stage.CHAMPION)
    predictions_create(model_version=champion, item_ids=open_item_ids(dataset.pk), update_items=True)


def _one_htmx_review(client, dataset: Dataset, reviewer) -> int:
    """Submit the held item through the htmx view; return the number of queries it took."""
    item = queue_next_item(dataset=dataset, reviewer=reviewer).item
    with CaptureQueriesContext(connection) as queries:
        response = _post(client, dataset, item, htmx=True)
    assert response.status_code == 200
    assert _card_item(response).pk != item.pk
    return len(queries)


@pytest.mark.parametrize("extra_open_items", [0, 60], ids=["30-open", "90-open"])
def test_review_loop_query_count_is_bounded(
    trained_dataset, reviewer, import_rows, broker, django_assert_max_num_queries, extra_open_items
):
    if extra_open_items:
        _grow_open_pool(trained_dataset, import_rows, extra_open_items)
    open_count = Item.objects.filter(dataset=trained_dataset, queue_state=Item.QueueState.OPEN).count()
    assert open_count == 30 + extra_open_items
    client = login(reviewer)
    item = queue_next_item(dataset=trained_dataset, reviewer=reviewer).item

    with django_assert_max_num_queries(REVIEW_LOOP_QUERIES):
        response = _post(client, trained_dataset, item, htmx=True)

    assert response.status_code == 200
    assert Review.objects.filter(item=item).exists()


def test_review_loop_query_count_does_not_grow_with_the_queue(trained_dataset, reviewer, import_rows, broker):
    client = login(reviewer)
    small = [_one_htmx_review(client, trained_dataset, reviewer) for _ in range(2)]

    _grow_open_pool(trained_dataset, import_rows, 60)  # 28 open -> 88 open, over 3x
    large = [_one_htmx_review(client, trained_dataset, reviewer) for _ in range(2)]

    assert small[0] == small[1] == large[0] == large[1] <= REVIEW_LOOP_QUERIES
