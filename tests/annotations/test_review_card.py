"""The review card speaks to a clinician: ties are ties, the pick is explained in words, a refused
answer names its item and its reason, the lease's end is shown (and warned about), and the page has an h1."""

from __future__ import annotations

import re
from datetime import timedelta

from django.urls import reverse
from django.utils import timezone

from annotations.models import Item, Review
from annotations.queue import STRATEGY_LEAST_CONFIDENCE, STRATEGY_UNSCORED, QueuedItem, queue_next_item, selection_for
from tests.helpers import login, review_counts


def _review_page(client, dataset) -> str:
    response = client.get(reverse("annotations:review", args=[dataset.pk]))
    assert response.status_code == 200
    return response.content.decode()


def _prediction_panel(html: str) -> str:
    found = re.search(r'<section class="prediction".*?</section>', html, re.S)
    assert found, html
    return found.group(0)


def _hold(dataset, reviewer, probabilities: dict[str, float]) -> Item:
    """The reviewer's current item, with the model's probabilities set to these."""
    item = queue_next_item(dataset=dataset, reviewer=reviewer).item
    top = max(probabilities, key=probabilities.get)
    Item.objects.filter(pk=item.pk).update(
        predicted_probabilities=probabilities,
        predicted_confidence=probabilities[top],
        predicted_label=dataset.label_classes.get(name=top),
        # what the prediction path writes under the default strategy (queue_scores.py)
        queue_priority=probabilities[top],
        priority_strategy="least_confidence",
    )
    return Item.objects.get(pk=item.pk)


# --- 11: ties, and why the item was picked -------------------------------------------------------


def test_a_tie_is_shown_as_undecided_between_both_labels(trained_dataset, reviewer):
    _hold(trained_dataset, reviewer, {"malignant": 0.5, "benign": 0.5})

    panel = _prediction_panel(_review_page(login(reviewer), trained_dataset))

    assert "undecided" in panel
    assert "Malignant" in panel and "Benign" in panel
    assert "predicts" not in panel
    assert "confident" not in panel


def test_a_near_tie_at_the_displayed_precision_is_a_tie(trained_dataset, reviewer):
    _hold(trained_dataset, reviewer, {"malignant": 0.504, "benign": 0.496})

    panel = _prediction_panel(_review_page(login(reviewer), trained_dataset))

    assert "undecided" in panel
    assert "predicts" not in panel


def test_a_tie_does_not_mark_either_choice_as_the_models(trained_dataset, reviewer):
    _hold(trained_dataset, reviewer, {"malignant": 0.5, "benign": 0.5})

    html = _review_page(login(reviewer), trained_dataset)

    assert "(model)" not in html


def test_a_clear_prediction_still_names_the_label_and_its_confidence(trained_dataset, reviewer):
    _hold(trained_dataset, reviewer, {"malignant": 0.8, "benign": 0.2})

    html = _review_page(login(reviewer), trained_dataset)
    panel = _prediction_panel(html)

    assert "predicts" in panel
    assert "Malignant" in panel and "80% confident" in panel
    assert "undecided" not in panel
    assert "(model)" in html


def test_why_picked_is_said_in_words_not_as_an_uncertainty_score(trained_dataset, reviewer):
    item = _hold(trained_dataset, reviewer, {"malignant": 0.501, "benign": 0.499})

    html = _review_page(login(reviewer), trained_dataset)

    assert "uncertainty" not in html
    assert "Picked because the model is unsure" in html
    assert "50% confidence" in html
    # The stored selection reason is unchanged: strategy and score.
    selection = selection_for(item)
    assert selection.strategy == STRATEGY_LEAST_CONFIDENCE
    assert selection.score == 0.499


def test_reason_text_in_arrival_order_says_there_is_no_prediction_yet(trained_dataset):
    item = Item.objects.filter(dataset=trained_dataset).first()

    text = QueuedItem(item, STRATEGY_UNSCORED, None).reason_text

    assert text == "Picked in arrival order: no prediction yet"


def test_reason_text_for_least_confidence_gives_the_top_answers_confidence(trained_dataset):
    item = Item.objects.filter(dataset=trained_dataset).first()

    text = QueuedItem(item, STRATEGY_LEAST_CONFIDENCE, 0.499).reason_text

    assert text.startswith("Picked because the model is unsure")
    assert "(its top answer has 50% confidence)" in text
    assert "0.499" not in text


# --- 10: a refused answer names its item and reason; the lease is shown ---------------------------


def _post(client, dataset, item, *, label="malignant", htmx=True, action="submit"):
    data = {
        "shown_prediction": item.prediction_id or "",
        "held_until": item.lease_expires_at.isoformat() if item.lease_expires_at else "",
        "label": label,
        "action": action,
        "reason": "",
    }
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    return client.post(reverse("annotations:review_submit", args=[dataset.pk, item.pk]), data, **headers)


def test_an_answer_refused_because_the_lease_expired_names_the_item_and_the_reason(
    trained_dataset, reviewer, reviewer2, broker
):
    item = queue_next_item(dataset=trained_dataset, reviewer=reviewer).item
    item.lease_expires_at = timezone.now() - timedelta(seconds=1)  # the hold the reviewer's card showed
    Item.objects.filter(pk=item.pk).update(lease_expires_at=item.lease_expires_at)
    assert queue_next_item(dataset=trained_dataset, reviewer=reviewer2).item.pk == item.pk
    client = login(reviewer)
    before = review_counts()

    html = _post(client, trained_dataset, item).content.decode()

    assert review_counts() == before
    error = re.search(r'<p class="error" role="alert">(.*?)</p>', html, re.S).group(1)
    assert item.external_id in error
    assert "not saved" in error
    assert "expired" in error
    assert "Malignant" in error  # what the reviewer had answered, so it is not silently lost


def test_a_plain_post_refused_names_the_item_in_the_message(trained_dataset, reviewer, reviewer2, broker):
    item = queue_next_item(dataset=trained_dataset, reviewer=reviewer2).item
    client = login(reviewer)

    response = _post(client, trained_dataset, item, htmx=False)

    assert response.status_code == 302
    html = client.get(response["Location"]).content.decode()
    assert f"item {item.external_id} was not saved" in html
    assert "someone else" in html


def test_an_answer_for_an_item_already_answered_in_another_tab_says_so(trained_dataset, reviewer, broker):
    client = login(reviewer)
    item = queue_next_item(dataset=trained_dataset, reviewer=reviewer).item
    _post(client, trained_dataset, item)  # the first tab

    html = _post(client, trained_dataset, item).content.decode()  # the second tab, same item

    assert f"item {item.external_id} was not saved" in html
    assert "already been reviewed" in html
    assert Review.objects.filter(item=item).count() == 1


def test_the_card_shows_when_the_lease_runs_out(trained_dataset, reviewer):
    html = _review_page(login(reviewer), trained_dataset)
    item = Item.objects.get(leased_to=reviewer)
    expires = timezone.localtime(item.lease_expires_at)

    assert f'data-lease-expires="{item.lease_expires_at.isoformat()}"' in html
    assert re.search(r'data-lease-left-s="(59\d|600)"', html)  # the default lease is 10 minutes
    # printed, for a html without JS
    assert f'for you until <time datetime="{item.lease_expires_at.isoformat()}">{expires:%H:%M}' in html
    assert 'id="lease-warning"' in html and 'aria-live="polite"' in html


# --- 16: the no-label message and a GET on the submit URL -------------------------------------------


def test_the_no_label_error_names_the_real_number_keys(trained_dataset, reviewer):
    assert trained_dataset.label_classes.count() == 2
    item = queue_next_item(dataset=trained_dataset, reviewer=reviewer).item

    html = _post(login(reviewer), trained_dataset, item, label="").content.decode()

    assert "1–2" in html
    assert "1–9" not in html
    assert f"item {item.external_id} was not saved" in html


def test_a_get_on_the_submit_url_goes_back_to_the_review_page(trained_dataset, reviewer):
    client = login(reviewer)
    item = queue_next_item(dataset=trained_dataset, reviewer=reviewer).item
    before = review_counts()

    response = client.get(reverse("annotations:review_submit", args=[trained_dataset.pk, item.pk]))

    assert response.status_code == 302
    assert response["Location"] == reverse("annotations:review", args=[trained_dataset.pk])
    assert review_counts() == before
    assert client.get(response["Location"]).status_code == 200


# --- 12: the review html has an h1; the card keeps its focusable h2 ----------------------------------


def test_the_review_page_has_one_h1_naming_the_dataset(trained_dataset, reviewer):
    html = _review_page(login(reviewer), trained_dataset)

    headings = re.findall(r"<h1[^>]*>(.*?)</h1>", html, re.S)
    assert len(headings) == 1
    assert "Review" in headings[0] and trained_dataset.name in headings[0]
    assert '<h2 tabindex="-1">Item' in html
