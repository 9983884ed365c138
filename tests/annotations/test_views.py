"""The review pages (annotations/views.py): htmx swaps the next card in, a plain post redirects, errors land on
a card; and the review loop's query count stays bounded however long the queue."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from annotations.models import Dataset, Item, Review
from annotations.queue import queue_next_item
from annotations.services import ReviewAnswer, review_submit
from governance.models import AuditEvent
from models_app.models import ModelVersion
from tests.helpers import login, other_label, review_counts, synthetic_rows

# Queries for one htmx review POST (submit + next card), measured; see test_review_loop_query_count_*.
# 27 since the counters: the answer inserts its counter deltas (the card reads "N awaiting" from
# them instead of counting the open items, which was 269 ms of a 324 ms step at a million items).
# 26 on SQLite since the label classes are read once per request (the answer and the card share them).
# Per database: SQLite's audit append is three statements (read the head, insert the event, move
# the head), PostgreSQL's one. Inside a test's transaction the retraining policy check, which runs
# after commit, never runs: bench/review_loop.py counts it (one more on PostgreSQL).
# One more on each since the card says "you answered N today" (the reviewer's reviews since midnight,
# by the review_reviewer_created index: what one person answers in a day, not the dataset).
# Two fewer on PostgreSQL since the claim looks for the held item and returns the claimed one (with its
# label and batch) in its own statement (annotations/queue.py::_claim_postgresql).
# One fewer on each since the session's user is read with their roles (workflow_site/auth_backend.py).
REVIEW_LOOP_QUERIES_BY_VENDOR = {"postgresql": 17, "sqlite": 25}
REVIEW_LOOP_QUERIES = REVIEW_LOOP_QUERIES_BY_VENDOR[connection.vendor]


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
    assert f"<code><bdi>{next_item.external_id}</bdi></code>" in page  # the id through the reveal filter
    assert reverse("annotations:review_submit", args=[trained_dataset.pk, next_item.pk]) in page
    assert Review.objects.get(item=item).decision == Review.Decision.ACCEPT


def test_plain_submit_redirects_to_the_review_page(trained_dataset, reviewer, broker):
    client = login(reviewer)
    item = queue_next_item(dataset=trained_dataset, reviewer=reviewer).item

    response = _post(client, trained_dataset, item, htmx=False, label=other_label(item).name)

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
    before = review_counts()

    response = _post(client, trained_dataset, item, htmx=True)

    assert response.status_code == 200
    assert "being reviewed by someone else" in response.content.decode()
    assert _card_item(response).pk != item.pk
    assert review_counts() == before


def test_plain_submit_with_a_stale_prediction_redirects_with_a_message(trained_dataset, reviewer, broker):
    client = login(reviewer)
    item = queue_next_item(dataset=trained_dataset, reviewer=reviewer).item
    Item.objects.filter(pk=item.pk).update(prediction_id=item.prediction_id + 10_000)
    before = review_counts()

    response = _post(client, trained_dataset, item, htmx=False)

    assert response.status_code == 302
    assert review_counts() == before
    page = client.get(response["Location"]).content.decode()
    assert "prediction for this item changed" in page


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


# --- Query count ----------------------------------------------------------------------------------------------


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

    assert small[0] == small[1] == large[0] == large[1] == REVIEW_LOOP_QUERIES


def test_the_card_says_how_many_items_you_answered_today(trained_dataset, reviewer, reviewer2, broker):
    from tests.helpers import review_next

    review_next(trained_dataset, reviewer)
    review_next(trained_dataset, reviewer, accept=False)
    review_next(trained_dataset, reviewer2)  # someone else's answers are not yours
    item = queue_next_item(dataset=trained_dataset, reviewer=reviewer).item
    review_submit(  # nor is a skip an answer
        item_id=item.pk, reviewer=reviewer, answer=ReviewAnswer(label=None, shown_prediction_id=item.prediction_id)
    )

    page = login(reviewer).get(reverse("annotations:review", args=[trained_dataset.pk])).content.decode()
    assert "you answered 2 today" in page


# The same loop under each queue strategy, from the audit slice, and with overlap 2, where an answer
# reads the item's reviews and the dataset's label names to settle it (consensus.py): exact counts,
# the same before and after the queue triples.
@pytest.mark.parametrize(
    ("settings_", "slice_draw", "extra"),
    [
        ({"queue_strategy": "margin"}, False, 0),
        ({"queue_strategy": "entropy"}, False, 0),
        ({"queue_strategy": "disagreement"}, False, 0),
        ({"queue_strategy": "label_issue"}, False, 0),
        ({}, True, 0),  # served by the random audit slice
        # a first answer of two reads the item's reviews and the label names, but writes no gold label
        # (SQLite's two statements for it, PostgreSQL's one) and no counter (the item stays open); the
        # card then counts the open items this reviewer answered ("N left for you")
        ({"overlap": 2}, False, {"postgresql": 1, "sqlite": 0}[connection.vendor]),
    ],
    ids=["margin", "entropy", "disagreement", "label-issue", "audit-slice", "overlap-2"],
)
def test_review_loop_query_count_is_exact_for_each_strategy_and_overlap(
    trained_dataset, reviewer, import_rows, broker, queue_draws, settings_, slice_draw, extra
):
    from annotations.workbench import queue_priorities_recompute

    Dataset.objects.filter(pk=trained_dataset.pk).update(**settings_)
    queue_priorities_recompute(dataset_id=trained_dataset.pk)
    if slice_draw:
        queue_draws.return_value = 0.05  # under the 10% slice, over the 0% blind share
    dataset = Dataset.objects.get(pk=trained_dataset.pk)
    client = login(reviewer)
    small = [_one_htmx_review(client, dataset, reviewer) for _ in range(2)]

    _grow_open_pool(dataset, import_rows, 60)
    large = [_one_htmx_review(client, dataset, reviewer) for _ in range(2)]

    assert small[0] == small[1] == large[0] == large[1] == REVIEW_LOOP_QUERIES + extra


# --- the follow-up flag on a revision -----------------------------------------------------------------------


def _first_label(dataset: Dataset) -> str:
    return dataset.label_classes.order_by("position").first().name


def _answer_blind(client, dataset: Dataset, reviewer, queue_draws, **data) -> tuple[Item, Review, str]:
    """Serve every item blind and answer one on the card; the item, the blind review and the reveal card."""
    Dataset.objects.filter(pk=dataset.pk).update(blind_percent=100, audit_slice_percent=0, audit_slice_off_reason="t")
    queue_draws.return_value = 0.5  # below 100% (blind), above 0% (no slice)
    client.get(reverse("annotations:review", args=[dataset.pk]), HTTP_HX_REQUEST="true")
    item = Item.objects.get(leased_to=reviewer)
    reveal = client.post(
        reverse("annotations:review_submit", args=[dataset.pk, item.pk]),
        {"shown_prediction": item.prediction_id, "action": "submit", **data},
        HTTP_HX_REQUEST="true",
    ).content.decode()
    return item, Review.objects.get(item=item), reveal


def test_a_reviewer_can_flag_an_item_for_follow_up_when_revising_and_the_audit_records_it(
    trained_dataset, reviewer, queue_draws, broker
):
    client = login(reviewer)
    item, blind, reveal = _answer_blind(
        client, trained_dataset, reviewer, queue_draws, label=_first_label(trained_dataset)
    )
    assert 'name="flagged" id="flagged">' in reveal  # offered on the reveal card, unticked as the answer was

    # The same label with the flag set is a revision: reviews are never edited, so the flag needs a new one.
    client.post(
        reverse("annotations:review_revise", args=[trained_dataset.pk, blind.pk]),
        {"action": "submit", "label": blind.label.name, "flagged": "on"},
        HTTP_HX_REQUEST="true",
    )

    revision = Review.objects.get(item=item, supersedes=blind)
    assert (revision.flagged, revision.label_id) == (True, blind.label_id)
    event = AuditEvent.objects.filter(action="review.revised").latest("seq")
    assert (event.before["flagged"], event.after["flagged"]) == (False, True)


def test_a_revision_keeps_the_blind_answers_flag_unless_it_is_unticked(trained_dataset, reviewer, queue_draws, broker):
    client = login(reviewer)
    item, blind, reveal = _answer_blind(
        client, trained_dataset, reviewer, queue_draws, label=_first_label(trained_dataset), flagged="on"
    )
    assert 'name="flagged" id="flagged" checked>' in reveal
    changed = trained_dataset.label_classes.exclude(pk=blind.label_id).first()
    revise_url = reverse("annotations:review_revise", args=[trained_dataset.pk, blind.pk])

    # A browser sends the box, still ticked, along with the new label.
    client.post(revise_url, {"action": "submit", "label": changed.name, "flagged": "on"}, HTTP_HX_REQUEST="true")
    revision = Review.objects.get(item=item, supersedes=blind)
    assert (revision.flagged, revision.label_id) == (True, changed.pk)
    # Unticked (and the label kept): a revision that clears the flag.
    client.post(
        reverse("annotations:review_revise", args=[trained_dataset.pk, revision.pk]),
        {"action": "submit", "label": changed.name},
        HTTP_HX_REQUEST="true",
    )
    assert Review.objects.get(item=item, supersedes=revision).flagged is False
