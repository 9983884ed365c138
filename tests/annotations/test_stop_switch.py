"""The stop switch (issue 10, point 6): a model admin switches the model's output off for a dataset; reviewers
then see no prediction anywhere, the queue serves items in random order, answers are never followed by a reveal,
and every switch is audited with its reason."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from annotations.models import Item, Review
from annotations.oversight import dataset_model_output_switch
from governance.models import AuditEvent
from tests.conftest import login


def _off(dataset, user, reason="the model misreads the new scanner"):  # type: ignore[no-untyped-def]
    return dataset_model_output_switch(dataset_id=dataset.pk, user=user, off=True, reason=reason)


def test_with_the_model_off_the_card_shows_no_prediction_and_the_answer_is_not_revealed(
    trained_dataset, model_admin, reviewer
):
    _off(trained_dataset, model_admin)
    client = login(reviewer)

    card = client.get(reverse("annotations:review", args=[trained_dataset.pk])).content.decode()
    item = Item.objects.get(leased_to=reviewer)
    assert "Model output switched off" in card and "the model misreads the new scanner" in card
    assert "(model)" not in card and 'class="explanation"' not in card and "confident" not in card
    assert item.lease_audit_slice and item.lease_blind  # random order, and nothing shown

    after = client.post(
        reverse("annotations:review_submit", args=[trained_dataset.pk, item.pk]),
        {"label": "benign", "shown_prediction": item.prediction_id, "action": "submit"},
        HTTP_HX_REQUEST="true",
    ).content.decode()
    review = Review.objects.get(item=item)
    assert (review.mode, review.shown_label_id, review.selection_strategy) == ("blind", None, "audit_slice")
    assert "the model's prediction" not in after.lower() and "Keep my answer" not in after  # no reveal: next card


def test_the_api_hides_the_prediction_and_reveals_nothing_after_the_answer(trained_dataset, model_admin, reviewer):
    _off(trained_dataset, model_admin)
    client = login(reviewer)
    served = client.get(f"/api/datasets/{trained_dataset.pk}/next-item/").json()
    assert served["blind"] is True
    assert served["item"]["predicted_label"] is None and served["item"]["predicted_probabilities"] is None
    answer = client.post(
        f"/api/items/{served['item']['id']}/reviews/",
        {"label": "benign", "shown_prediction_id": served["blind_prediction_id"]},
        content_type="application/json",
    ).json()
    assert answer["mode"] == "blind" and answer["revealed_prediction"] is None


def test_switching_needs_a_reason_is_audited_and_can_be_undone(trained_dataset, model_admin):
    with pytest.raises(ValidationError):
        dataset_model_output_switch(dataset_id=trained_dataset.pk, user=model_admin, off=True, reason=" ")
    _off(trained_dataset, model_admin)
    with pytest.raises(ValidationError, match="already off"):
        _off(trained_dataset, model_admin)
    dataset_model_output_switch(dataset_id=trained_dataset.pk, user=model_admin, off=False, reason="fixed")
    actions = list(
        AuditEvent.objects.filter(action__startswith="dataset.model_output_switched")
        .order_by("seq")
        .values_list("action", "reason")
    )
    assert actions == [
        ("dataset.model_output_switched_off", "the model misreads the new scanner"),
        ("dataset.model_output_switched_on", "fixed"),
    ]
    trained_dataset.refresh_from_db()
    assert not trained_dataset.model_output_off and trained_dataset.model_output_off_reason == ""


def test_only_model_admins_flip_the_switch_in_the_page_and_the_api(trained_dataset, model_admin, auditor, reviewer):
    url = reverse("annotations:model_output_switch", args=[trained_dataset.pk])
    for user in (auditor, reviewer):
        assert login(user).post(url, {"model_output": "off", "reason": "x"}).status_code == 403
    page = login(auditor).get(reverse("annotations:workbench_settings", args=[trained_dataset.pk])).content.decode()
    assert 'data-model-output="on"' in page and "Switch the model's output off" not in page

    response = login(model_admin).post(url, {"model_output": "off", "reason": "drift alarm"})
    assert response.status_code == 302
    api = login(auditor).get(f"/api/datasets/{trained_dataset.pk}/model-output/").json()
    assert api["off"] is True and api["reason"] == "drift alarm"
    back = login(model_admin).post(
        f"/api/datasets/{trained_dataset.pk}/model-output/",
        {"off": False, "reason": "ok"},
        content_type="application/json",
    )
    assert back.status_code == 200 and back.json()["off"] is False


def test_with_the_model_off_a_reviewer_finds_no_prediction_in_the_item_list_nor_by_filtering(
    trained_dataset, model_admin, reviewer, auditor
):
    from annotations.queue import queue_next_item
    from annotations.services import review_submit
    from tests.helpers import answer_for

    queued = queue_next_item(dataset=trained_dataset, reviewer=reviewer)
    review_submit(item_id=queued.item.pk, reviewer=reviewer, answer=answer_for(queued.item))
    _off(trained_dataset, model_admin)
    client = login(reviewer)

    rows = client.get(f"/api/datasets/{trained_dataset.pk}/items/").json()["items"]
    assert rows and all(r["predicted_label"] is None and r["predicted_confidence"] is None for r in rows)
    assert all(r["predicted_probabilities"] is None and r["explanation"] is None for r in rows)
    for query in ({"max_confidence": 0.6}, {"predicted_label": "benign"}, {"sort": "confidence"}):
        refused = client.get(f"/api/datasets/{trained_dataset.pk}/items/", query)
        assert refused.status_code == 400 and "switched off" in str(refused.json()), query
    page = client.get(reverse("annotations:item_list", args=[trained_dataset.pk])).content.decode()
    assert "hidden (model output off)" in page and 'name="max_confidence"' not in page
    assert "Confidence, lowest first" not in page
    # A model admin and an auditor still see what the model said.
    for person in (model_admin, auditor):
        seen = login(person).get(f"/api/datasets/{trained_dataset.pk}/items/", {"max_confidence": 1}).json()
        assert any(r["predicted_label"] for r in seen["items"])


def test_with_the_model_off_an_adjudicator_sees_no_prediction_on_the_page_or_in_the_api(
    trained_dataset, model_admin, reviewer, reviewer2, adjudicator
):
    from annotations.models import Dataset
    from annotations.queue import queue_next_item
    from annotations.services import review_submit
    from tests.helpers import answer_for

    Dataset.objects.filter(pk=trained_dataset.pk).update(overlap=2)
    dataset = Dataset.objects.get(pk=trained_dataset.pk)
    for person, accept in ((reviewer, True), (reviewer2, False)):  # they disagree: the item goes to adjudication
        queued = queue_next_item(dataset=dataset, reviewer=person)
        review_submit(item_id=queued.item.pk, reviewer=person, answer=answer_for(queued.item, accept=accept))
    _off(dataset, model_admin)
    client = login(adjudicator)

    page = client.get(reverse("annotations:adjudicate", args=[dataset.pk])).content.decode()
    assert "(model)" not in page
    served = client.get(f"/api/datasets/{dataset.pk}/adjudication/next-item/").json()
    assert served["item"] is not None
    assert all(served["item"][field] is None for field in ("predicted_label", "predicted_confidence", "explanation"))
