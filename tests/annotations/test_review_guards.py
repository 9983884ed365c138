"""Guards on the review loop found in review: leases, double skips, expired sessions."""

from __future__ import annotations

from django.test import Client
from django.urls import reverse

from annotations.models import Item, Review
from annotations.queue import queue_next_item
from governance.models import AuditEvent
from tests.conftest import login


def test_an_item_the_queue_did_not_hand_out_cannot_be_reviewed_through_the_api(trained_dataset, reviewer):
    # The most confident item: a reviewer picking it would falsify the "least confidence" selection reason.
    item = Item.objects.filter(dataset=trained_dataset, queue_state="open").order_by("-queue_priority").first()
    response = login(reviewer).post(
        f"/api/items/{item.pk}/reviews/",
        {"label": "benign", "shown_prediction_id": item.prediction_id},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert "not handed to you" in response.content.decode()
    assert not Review.objects.exists()


def test_a_second_skip_of_the_same_item_is_refused(trained_dataset, reviewer):
    client = login(reviewer)
    item = queue_next_item(dataset=trained_dataset, reviewer=reviewer).item
    url = reverse("annotations:review_submit", args=[trained_dataset.pk, item.pk])
    data = {"action": "skip", "shown_prediction": item.prediction_id}
    client.post(url, data, HTTP_HX_REQUEST="true")
    response = client.post(url, data, HTTP_HX_REQUEST="true")
    assert response.status_code == 200  # the next card, with the error on it
    assert "not handed to you" in response.content.decode()
    assert Review.objects.filter(item=item).count() == 1
    assert AuditEvent.objects.filter(action="review.skipped").count() == 1


def test_an_expired_session_sends_htmx_to_the_login_page_not_into_the_card(trained_dataset):
    url = reverse("annotations:review_submit", args=[trained_dataset.pk, 1])
    review_page = reverse("annotations:review", args=[trained_dataset.pk])
    response = Client().post(
        url, {"label": "benign"}, HTTP_HX_REQUEST="true", HTTP_HX_CURRENT_URL=f"http://testserver{review_page}"
    )
    assert response.status_code == 200
    assert response["HX-Redirect"] == f"/login/?next={review_page.replace('/', '%2F')}"
    assert b"Sign in" not in response.content


def test_a_plain_request_still_redirects_to_login(trained_dataset):
    response = Client().get(reverse("annotations:review", args=[trained_dataset.pk]))
    assert response.status_code == 302 and response["Location"].startswith("/login/")
