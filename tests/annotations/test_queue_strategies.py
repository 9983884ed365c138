"""Queue strategies, the random audit slice, and the queue settings that choose them (issue 8, point 1)."""

from __future__ import annotations

import numpy as np
import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from annotations.models import Dataset, Item, QueueStrategy, Review
from annotations.queue import STRATEGY_AUDIT_SLICE, queue_next_item
from annotations.queue_scores import priorities_from_scores, strategy_scores
from annotations.services import review_submit
from annotations.workbench import QueueSettings, dataset_queue_settings_set, queue_priorities_recompute
from governance.models import AuditEvent
from tests.helpers import answer_for, login


def test_scores_for_each_probability_strategy_match_their_definitions():
    proba = np.array([[0.5, 0.5, 0.0], [0.7, 0.2, 0.1], [1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3]])

    least = strategy_scores(QueueStrategy.LEAST_CONFIDENCE, proba)
    margin = strategy_scores(QueueStrategy.MARGIN, proba)
    entropy = strategy_scores(QueueStrategy.ENTROPY, proba)

    np.testing.assert_allclose(least, [0.5, 0.3, 0.0, 2 / 3])
    np.testing.assert_allclose(margin, [1.0, 0.5, 0.0, 1.0])
    expected = [np.log(2) / np.log(3), -(0.7 * np.log(0.7) + 0.2 * np.log(0.2) + 0.1 * np.log(0.1)) / np.log(3), 0, 1]
    np.testing.assert_allclose(entropy, expected, atol=1e-12)
    assert strategy_scores(QueueStrategy.DISAGREEMENT, proba) is None
    np.testing.assert_allclose(priorities_from_scores(margin), [0.0, 0.5, 1.0, 0.0])


def test_one_class_scores_zero_under_margin_and_entropy():
    proba = np.array([[1.0], [1.0]])

    assert strategy_scores(QueueStrategy.MARGIN, proba).tolist() == [0.0, 0.0]
    assert strategy_scores(QueueStrategy.ENTROPY, proba).tolist() == [0.0, 0.0]


def _settings(dataset: Dataset, **changes) -> QueueSettings:  # type: ignore[no-untyped-def]
    return QueueSettings(**{**QueueSettings.of(dataset).__dict__, **changes})


def test_changing_the_strategy_is_audited_and_reorders_the_open_items(trained_dataset, model_admin, reviewer):
    rescore = dataset_queue_settings_set(
        dataset_id=trained_dataset.pk, user=model_admin, wanted=_settings(trained_dataset, strategy="margin")
    )
    assert rescore is True
    event = AuditEvent.objects.get(action="dataset.queue_settings_changed")
    assert (event.before["strategy"], event.after["strategy"]) == ("least_confidence", "margin")

    rescored = queue_priorities_recompute(dataset_id=trained_dataset.pk)

    open_items = Item.objects.filter(dataset=trained_dataset, queue_state=Item.QueueState.OPEN)
    assert rescored == open_items.exclude(predicted_probabilities=None).count() > 0
    for item in open_items.exclude(predicted_probabilities=None):
        p = sorted(item.predicted_probabilities.values())
        assert item.priority_strategy == "margin"
        assert item.queue_priority == pytest.approx(round(p[-1] - p[-2], 6), abs=1e-6)
    queued = queue_next_item(dataset=Dataset.objects.get(pk=trained_dataset.pk), reviewer=reviewer)
    smallest_margin = open_items.order_by("queue_priority", "id").first()
    assert queued.item.pk == smallest_margin.pk
    assert queued.strategy == "margin" and "top two answers are close" in queued.reason_text
    review = review_submit(item_id=queued.item.pk, reviewer=reviewer, answer=answer_for(queued.item))
    assert (review.selection_strategy, review.selection_score) == (
        "margin",
        round(1 - smallest_margin.queue_priority, 6),
    )


def test_new_predictions_are_scored_under_the_datasets_strategy(trained_dataset, model_admin, import_rows):
    from models_app.prediction import predictions_refresh
    from tests.helpers import synthetic_rows

    Dataset.objects.filter(pk=trained_dataset.pk).update(queue_strategy="entropy")
    batch = import_rows(synthetic_rows(5, start=9000, labelled=False, prefix="ent"), name="ent.csv")
    predictions_refresh(dataset_id=trained_dataset.pk, batch_id=batch.pk)

    for item in Item.objects.filter(batch=batch):
        proba = np.array([list(item.predicted_probabilities.values())])
        expected = priorities_from_scores(strategy_scores("entropy", proba))[0]
        assert item.priority_strategy == "entropy"
        assert item.queue_priority == pytest.approx(expected, abs=1e-5)


def test_the_audit_slice_serves_items_in_random_key_order_and_the_review_says_so(
    trained_dataset, reviewer, queue_draws
):
    queue_draws.return_value = 0.0  # every draw fires: the slice serves, and blind is off (0%)
    Dataset.objects.filter(pk=trained_dataset.pk).update(blind_percent=0)
    dataset = Dataset.objects.get(pk=trained_dataset.pk)
    first_random = (
        Item.objects.filter(dataset=dataset, queue_state=Item.QueueState.OPEN).order_by("random_key", "id").first()
    )

    queued = queue_next_item(dataset=dataset, reviewer=reviewer)

    assert queued.item.pk == first_random.pk
    assert queued.strategy == STRATEGY_AUDIT_SLICE and queued.item.lease_audit_slice
    assert "at random" in queued.reason_text
    review = review_submit(item_id=queued.item.pk, reviewer=reviewer, answer=answer_for(queued.item))
    assert (review.selection_strategy, review.selection_score) == (STRATEGY_AUDIT_SLICE, None)
    assert AuditEvent.objects.filter(action="review.submitted").latest("id").after["selection"]["strategy"] == (
        "audit_slice"
    )


def test_random_keys_are_drawn_per_item_at_import(trained_dataset):
    keys = list(Item.objects.filter(dataset=trained_dataset).values_list("random_key", flat=True))

    assert len(set(keys)) == len(keys) > 10


def test_the_audit_slice_can_only_be_turned_off_with_a_reason(trained_dataset, model_admin):
    with pytest.raises(ValidationError) as refused:
        dataset_queue_settings_set(
            dataset_id=trained_dataset.pk, user=model_admin, wanted=_settings(trained_dataset, audit_slice_percent=0)
        )
    assert "audit_slice_off_reason" in refused.value.message_dict
    assert Dataset.objects.get(pk=trained_dataset.pk).audit_slice_percent == 10

    dataset_queue_settings_set(
        dataset_id=trained_dataset.pk,
        user=model_admin,
        wanted=_settings(trained_dataset, audit_slice_percent=0, audit_slice_off_reason="pilot: every item reviewed"),
    )
    event = AuditEvent.objects.get(action="dataset.queue_settings_changed")
    assert event.reason == "pilot: every item reviewed"
    assert Dataset.objects.get(pk=trained_dataset.pk).audit_slice_off_reason == "pilot: every item reviewed"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("strategy", "alphabetical"),
        ("audit_slice_percent", 101),
        ("overlap", 0),
        ("overlap", 11),
        ("blind_percent", -1),
    ],
)
def test_bad_queue_settings_are_refused_naming_the_field_and_change_nothing(trained_dataset, model_admin, field, value):
    before = QueueSettings.of(trained_dataset)

    with pytest.raises(ValidationError) as refused:
        dataset_queue_settings_set(
            dataset_id=trained_dataset.pk, user=model_admin, wanted=_settings(trained_dataset, **{field: value})
        )

    assert field in refused.value.message_dict
    assert QueueSettings.of(Dataset.objects.get(pk=trained_dataset.pk)) == before
    assert not AuditEvent.objects.filter(action="dataset.queue_settings_changed").exists()


def test_the_settings_page_saves_for_model_admins_and_is_read_only_for_auditors(
    trained_dataset, model_admin, auditor, reviewer
):
    url = reverse("annotations:workbench_settings", args=[trained_dataset.pk])
    form = {
        "strategy": "entropy",
        "audit_slice_percent": 5,
        "audit_slice_off_reason": "",
        "overlap": 2,
        "blind_percent": 20,
    }

    response = login(model_admin).post(url, form)

    assert response.status_code == 302
    dataset = Dataset.objects.get(pk=trained_dataset.pk)
    assert (dataset.queue_strategy, dataset.audit_slice_percent, dataset.overlap, dataset.blind_percent) == (
        "entropy",
        5,
        2,
        20,
    )
    page = login(auditor).get(url)
    assert page.status_code == 200 and b"Save settings" not in page.content
    assert login(auditor).post(url, form).status_code == 403
    assert login(reviewer).get(url).status_code == 403


def test_the_settings_page_says_what_is_wrong_and_where(trained_dataset, model_admin):
    url = reverse("annotations:workbench_settings", args=[trained_dataset.pk])
    form = {
        "strategy": "margin",
        "audit_slice_percent": 0,
        "audit_slice_off_reason": " ",
        "overlap": 1,
        "blind_percent": 0,
    }

    response = login(model_admin).post(url, form)

    assert response.status_code == 400
    assert "Say why the random audit slice is turned off" in response.content.decode()
    assert Dataset.objects.get(pk=trained_dataset.pk).queue_strategy == "least_confidence"


def test_the_settings_api_reads_and_writes_with_the_same_rules(trained_dataset, model_admin, reviewer):
    url = reverse("api_queue_settings", args=[trained_dataset.pk])
    admin = login(model_admin)

    assert admin.get(url).json()["audit_slice_percent"] == 10
    bad = admin.put(
        url, {"strategy": "margin", "audit_slice_percent": 0, "overlap": 1, "blind_percent": 0}, "application/json"
    )
    assert bad.status_code == 400 and "audit_slice_off_reason" in bad.json()
    good = admin.put(
        url, {"strategy": "margin", "audit_slice_percent": 10, "overlap": 3, "blind_percent": 0}, "application/json"
    )
    assert good.status_code == 200 and good.json()["overlap"] == 3 and good.json()["rescoring_queued"] is True
    assert login(reviewer).get(url).status_code == 403


def test_the_review_records_the_strategy_of_the_stored_priority_not_the_current_setting(trained_dataset, reviewer):
    # Strategy changed, rescoring not run yet: the item was still picked by least confidence.
    Dataset.objects.filter(pk=trained_dataset.pk).update(queue_strategy="margin")
    queued = queue_next_item(dataset=Dataset.objects.get(pk=trained_dataset.pk), reviewer=reviewer)

    review = review_submit(item_id=queued.item.pk, reviewer=reviewer, answer=answer_for(queued.item))

    assert review.selection_strategy == "least_confidence"
    assert Review.objects.get(pk=review.pk).selection_score == round(1 - queued.item.queue_priority, 6)


@pytest.mark.parametrize("strategy", ["disagreement", "label_issue"])
def test_rescoring_from_score_columns_goes_a_chunk_at_a_time_each_its_own_transaction(
    trained_dataset, strategy, monkeypatch
):
    # One UPDATE of every open item held all their row locks at once (over a minute at a million items),
    # and the queue's claim skips locked rows: reviewers got nothing meanwhile.
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from annotations import workbench

    open_items = Item.objects.filter(dataset=trained_dataset, queue_state=Item.QueueState.OPEN)
    ids = list(open_items.order_by("pk").values_list("pk", flat=True))
    scored = ids[::3]
    Item.objects.filter(pk__in=scored).update(disagreement_score=0.25)
    Dataset.objects.filter(pk=trained_dataset.pk).update(queue_strategy=strategy)
    monkeypatch.setattr(workbench, "RESCORE_CHUNK", 7)

    with CaptureQueriesContext(connection) as queries:
        rescored = queue_priorities_recompute(dataset_id=trained_dataset.pk)

    updates = [q["sql"] for q in queries.captured_queries if q["sql"].lstrip().upper().startswith("UPDATE")]
    assert len(updates) == -(-len(ids) // 7)  # one per chunk of 7
    assert rescored == len(ids)
    # Again: nothing changes, so no row is rewritten (each rewrite is a dead tuple in every index).
    assert queue_priorities_recompute(dataset_id=trained_dataset.pk) == 0
    for item in open_items:
        if strategy == "disagreement" and item.pk in scored:
            assert (item.queue_priority, item.priority_strategy) == (0.75, "disagreement")
        else:
            assert (item.queue_priority, item.priority_strategy) == (None, "")


def test_every_item_the_audit_slice_serves_is_on_record_even_when_it_is_never_answered(
    trained_dataset, reviewer, model_admin, queue_draws
):
    from governance.models import DataAccess
    from tests.helpers import candidate_train

    queue_draws.return_value = 0.0  # the slice serves every card, and blind is off
    Dataset.objects.filter(pk=trained_dataset.pk).update(blind_percent=0)
    client = login(reviewer)

    served = client.get(reverse("api_next_item", args=[trained_dataset.pk])).json()
    # The lease runs out unanswered: the item goes back to the pool with no review at all.
    Item.objects.filter(pk=served["item"]["id"]).update(lease_expires_at=None, leased_to=None)

    assert served["selection_strategy"] == STRATEGY_AUDIT_SLICE
    assert not Review.objects.filter(item_id=served["item"]["id"]).exists()
    record = DataAccess.objects.get(item_id=served["item"]["id"], user=reviewer)
    assert (record.served_by, record.purpose) == (STRATEGY_AUDIT_SLICE, "api")
    # The card records the strategy that served it, whatever it is.
    queue_draws.return_value = 1.0
    login(reviewer).get(reverse("annotations:review", args=[trained_dataset.pk]))
    card = DataAccess.objects.filter(user=reviewer, purpose="review_card").latest("id")
    assert card.served_by == trained_dataset.queue_strategy

    version = candidate_train(trained_dataset, requested_by=model_admin, reason="after the slice served one")
    sheet = login(model_admin).get(reverse("governance:datasheet", args=[version.snapshot_id]) + "?format=json")
    composition = sheet.json()["composition"]
    assert composition["audit_slice_items_served"] == 1 and composition["from_random_audit_slice"] == 0
