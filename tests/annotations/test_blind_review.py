"""Blind review, the reveal and revision, undo and "uncertain" on the card and in the API; the adjudication page."""

from __future__ import annotations

from django.urls import reverse

from annotations.models import Dataset, GoldLabel, Item, Review
from annotations.queue import queue_next_item
from governance.models import AuditEvent
from tests.helpers import login, other_label


def _blind(dataset: Dataset, queue_draws) -> Dataset:  # type: ignore[no-untyped-def]
    """Every item served blind, none from the audit slice."""
    Dataset.objects.filter(pk=dataset.pk).update(blind_percent=100, audit_slice_percent=0, audit_slice_off_reason="t")
    queue_draws.return_value = 0.5  # below 100% (blind), above 0% (no slice)
    return Dataset.objects.get(pk=dataset.pk)


def _card(client, dataset):  # type: ignore[no-untyped-def]
    return client.get(reverse("annotations:review", args=[dataset.pk]), HTTP_HX_REQUEST="true").content.decode()


def _post(client, dataset, item, **data):  # type: ignore[no-untyped-def]
    url = reverse("annotations:review_submit", args=[dataset.pk, item.pk])
    return client.post(url, {"shown_prediction": item.prediction_id or "", **data}, HTTP_HX_REQUEST="true")


def test_a_blind_card_hides_the_prediction_and_the_models_label(trained_dataset, reviewer, queue_draws):
    dataset = _blind(trained_dataset, queue_draws)
    client = login(reviewer)

    html = _card(client, dataset)

    item = Item.objects.get(leased_to=reviewer)
    assert item.lease_blind
    assert "Blind review" in html
    assert "(model)" not in html
    assert f"{item.predicted_confidence:.0%}" not in html.replace("&nbsp;", " ")
    assert "predicts" not in html


def test_a_blind_answer_is_kept_then_the_prediction_revealed_and_a_revision_supersedes_it(
    trained_dataset, reviewer, queue_draws
):
    dataset = _blind(trained_dataset, queue_draws)
    client = login(reviewer)
    _card(client, dataset)
    item = Item.objects.get(leased_to=reviewer)
    wrong = other_label(item)

    reveal = _post(client, dataset, item, label=wrong.name, action="submit").content.decode()

    blind = Review.objects.get(item=item)
    assert (blind.mode, blind.decision, blind.shown_label_id, blind.shown_confidence) == ("blind", "label", None, None)
    assert "the model&#x27;s prediction" in reveal or "the model's prediction" in reveal
    assert "(your answer)" in reveal and "(model)" in reveal
    # The revision is made on the evidence: the item's data are on the reveal card too, and now its explanation.
    first_feature = trained_dataset.features.order_by("position").first()
    assert 'id="features-caption"' in reveal and f">{first_feature.name}<" in reveal
    assert 'class="explanation"' in reveal
    assert GoldLabel.objects.get(item=item).label_id == wrong.pk  # the blind answer counts at once

    revise_url = reverse("annotations:review_revise", args=[dataset.pk, blind.pk])
    client.post(revise_url, {"action": "submit", "label": item.predicted_label.name}, HTTP_HX_REQUEST="true")

    revision = Review.objects.filter(item=item).latest("created_at")
    assert (revision.mode, revision.decision, revision.supersedes_id) == ("revealed", "accept", blind.pk)
    assert revision.shown_label_id == item.predicted_label_id
    assert GoldLabel.objects.get(item=item).label_id == item.predicted_label_id
    assert Review.objects.filter(item=item).count() == 2  # both answers kept


def test_keeping_the_blind_answer_writes_nothing_more(trained_dataset, reviewer, queue_draws):
    dataset = _blind(trained_dataset, queue_draws)
    client = login(reviewer)
    _card(client, dataset)
    item = Item.objects.get(leased_to=reviewer)
    _post(client, dataset, item, label=item.predicted_label.name, action="submit")
    blind = Review.objects.get(item=item)

    for action in ("keep", "submit"):  # Keep, or Enter on the same label
        client.post(
            reverse("annotations:review_revise", args=[dataset.pk, blind.pk]),
            {"action": action, "label": item.predicted_label.name},
            HTTP_HX_REQUEST="true",
        )

    assert Review.objects.filter(item=item).count() == 1


def test_the_card_offers_undo_and_undo_brings_the_item_back(trained_dataset, reviewer):
    client = login(reviewer)
    _card(client, trained_dataset)
    item = Item.objects.get(leased_to=reviewer)

    html = _post(client, trained_dataset, item, label=item.predicted_label.name, action="submit").content.decode()

    review = Review.objects.get(item=item)
    assert 'value="undo"' in html and item.external_id in html
    html = client.post(
        reverse("annotations:review_revise", args=[trained_dataset.pk, review.pk]),
        {"action": "undo"},
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert Review.objects.filter(item=item, decision="withdrawn", supersedes=review).exists()
    assert item.external_id in html, html[:600]  # the card is that item again, held for them
    assert Item.objects.get(pk=item.pk).leased_to_id == reviewer.pk


def test_uncertain_on_the_card_sends_the_item_to_adjudication(trained_dataset, reviewer):
    client = login(reviewer)
    _card(client, trained_dataset)
    item = Item.objects.get(leased_to=reviewer)

    _post(client, trained_dataset, item, action="uncertain")

    assert Review.objects.get(item=item).decision == "uncertain"
    assert Item.objects.get(pk=item.pk).queue_state == Item.QueueState.ADJUDICATE


def test_the_api_withholds_the_prediction_of_a_blind_item_and_reveals_it_with_the_answer(
    trained_dataset, reviewer, queue_draws
):
    dataset = _blind(trained_dataset, queue_draws)
    client = login(reviewer)

    data = client.get(reverse("api_next_item", args=[dataset.pk])).json()

    assert data["blind"] is True
    assert data["item"]["predicted_label"] is None and data["item"]["predicted_probabilities"] is None
    assert data["item"]["predicted_confidence"] is None and data["item"]["explanation"] is None
    # Under least confidence the score is 1 - the model's confidence: withheld too.
    assert data["selection_strategy"] and data["selection_score"] is None
    item = Item.objects.get(pk=data["item"]["id"])
    answer = client.post(
        reverse("api_review_create", args=[item.pk]),
        {"label": other_label(item).name, "shown_prediction_id": data["blind_prediction_id"]},
        "application/json",
    ).json()
    assert answer["mode"] == "blind"
    assert answer["revealed_prediction"]["label"] == item.predicted_label.name
    revised = client.post(
        reverse("api_review_revise", args=[answer["id"]]),
        {"action": "revise", "label": item.predicted_label.name},
        "application/json",
    )
    assert revised.status_code == 201 and revised.json()["mode"] == "revealed"
    assert revised.json()["supersedes"] == answer["id"]


def test_the_api_takes_uncertain_and_refuses_it_with_a_label(trained_dataset, reviewer):
    client = login(reviewer)
    data = client.get(reverse("api_next_item", args=[trained_dataset.pk])).json()
    url = reverse("api_review_create", args=[data["item"]["id"]])

    both = client.post(
        url,
        {"uncertain": True, "label": "benign", "shown_prediction_id": data["item"]["prediction_id"]},
        "application/json",
    )
    assert both.status_code == 400 and "uncertain" in both.json()
    ok = client.post(url, {"uncertain": True, "shown_prediction_id": data["item"]["prediction_id"]}, "application/json")
    assert ok.status_code == 201 and ok.json()["decision"] == "uncertain" and ok.json()["label"] is None


def _disputed(dataset, reviewer, reviewer2) -> Item:  # type: ignore[no-untyped-def]
    client = login(reviewer)
    data = client.get(reverse("api_next_item", args=[dataset.pk])).json()
    client.post(
        reverse("api_review_create", args=[data["item"]["id"]]),
        {"uncertain": True, "shown_prediction_id": data["item"]["prediction_id"]},
        "application/json",
    )
    return Item.objects.get(pk=data["item"]["id"])


def test_the_adjudication_page_shows_the_answers_and_records_the_decision(
    trained_dataset, reviewer, reviewer2, adjudicator
):
    item = _disputed(trained_dataset, reviewer, reviewer2)
    client = login(adjudicator)
    page = client.get(reverse("annotations:adjudicate", args=[trained_dataset.pk])).content.decode()
    assert item.external_id in page and "uncertain" in page and "reviewer" in page
    assert 'id="features-caption"' in page and "Normal range" in page  # the same data table as the card

    url = reverse("annotations:adjudication_submit", args=[trained_dataset.pk, item.pk])
    refused = client.post(url, {"label": item.predicted_label.name, "reason": ""}, HTTP_HX_REQUEST="true")
    assert "not saved" in refused.content.decode() and "reason" in refused.content.decode()
    client.post(url, {"label": item.predicted_label.name, "reason": "clear on the image"}, HTTP_HX_REQUEST="true")

    gold = GoldLabel.objects.get(item=item)
    assert (gold.origin, gold.label_id) == ("adjudication", item.predicted_label_id)


def test_only_adjudicators_adjudicate_in_the_ui_and_the_api(trained_dataset, reviewer, reviewer2, model_admin, auditor):
    item = _disputed(trained_dataset, reviewer, reviewer2)
    for user in (reviewer2, model_admin, auditor):
        client = login(user)
        assert client.get(reverse("annotations:adjudicate", args=[trained_dataset.pk])).status_code == 403
        assert client.get(reverse("api_adjudication_next", args=[trained_dataset.pk])).status_code == 403
        response = client.post(
            reverse("api_adjudication_submit", args=[item.pk]), {"label": "benign", "reason": "x"}, "application/json"
        )
        assert response.status_code == 403
    assert Item.objects.get(pk=item.pk).queue_state == Item.QueueState.ADJUDICATE


def test_the_adjudication_api_lists_the_answers_and_decides(trained_dataset, reviewer, reviewer2, adjudicator):
    item = _disputed(trained_dataset, reviewer, reviewer2)
    client = login(adjudicator)

    data = client.get(reverse("api_adjudication_next", args=[trained_dataset.pk])).json()

    assert data["item"]["id"] == item.pk
    assert [(a["reviewer"], a["decision"]) for a in data["answers"]] == [("reviewer", "uncertain")]
    decided = client.post(
        reverse("api_adjudication_submit", args=[item.pk]), {"label": "benign", "reason": "x"}, "application/json"
    )
    assert decided.status_code == 201 and decided.json()["decision"] == "adjudicate"
    assert queue_next_item  # the reviewer's queue no longer has it:
    assert Item.objects.get(pk=item.pk).queue_state == Item.QueueState.DONE


def test_the_revise_api_takes_the_flag_and_keeps_it_when_left_out(trained_dataset, reviewer):
    client = login(reviewer)
    data = client.get(reverse("api_next_item", args=[trained_dataset.pk])).json()
    item = Item.objects.get(pk=data["item"]["id"])
    answer = client.post(
        reverse("api_review_create", args=[item.pk]),
        {"label": item.predicted_label.name, "shown_prediction_id": item.prediction_id, "flagged": True},
        "application/json",
    ).json()
    kept = client.post(
        reverse("api_review_revise", args=[answer["id"]]),
        {"action": "revise", "label": other_label(item).name},
        "application/json",
    )
    assert kept.status_code == 201, kept.content
    assert kept.json()["flagged"] is True
    cleared = client.post(
        reverse("api_review_revise", args=[kept.json()["id"]]),
        {"action": "revise", "label": item.predicted_label.name, "flagged": False},
        "application/json",
    )
    assert cleared.json()["flagged"] is False
    assert Review.objects.get(pk=cleared.json()["id"]).flagged is False
    event = AuditEvent.objects.filter(action="review.revised").latest("seq")
    assert (event.before["flagged"], event.after["flagged"]) == (True, False)
