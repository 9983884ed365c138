"""The API review loop's query count (issue 7 for API clients): an answer through POST /api/items/<id>/reviews/
and the next item through GET /api/datasets/<id>/next-item/ take the same, exact number of statements
whatever the size of the queue, as the page's htmx loop does (tests/annotations/test_views.py)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from annotations.models import Dataset, Item, Review
from models_app.models import ModelVersion
from tests.helpers import login, synthetic_rows

# Statements for one API step (the answer's POST plus the next item's GET), measured, as bench/review_loop.py
# drives it (a signed-in session): two requests, so the session and its user with their roles are read twice,
# but no progress figures (those are GET /api/datasets/<id>/progress/, asked when a client wants them).
# Per database as in test_views.py's REVIEW_LOOP_QUERIES_BY_VENDOR: SQLite's audit append is three
# statements, PostgreSQL's one; PostgreSQL's claim finds the held item and returns the claimed one in its own
# statement. Under overlap 2 a first answer reads the item's reviews and the label names to settle it, but
# writes no gold label (SQLite's two statements for it, PostgreSQL's one) and no counter.
API_LOOP_QUERIES_BY_VENDOR = {"postgresql": {1: 16, 2: 16}, "sqlite": {1: 24, 2: 23}}
API_LOOP_QUERIES = API_LOOP_QUERIES_BY_VENDOR[connection.vendor]


def _grow_open_pool(dataset: Dataset, import_rows, extra: int) -> None:
    """Add `extra` open items, predicted by the champion like the others."""
    from models_app.prediction import open_item_ids, predictions_create

    import_rows(synthetic_rows(extra, start=1000, labelled=False), name="more.csv")
    champion = ModelVersion.objects.get(dataset=dataset, stage=ModelVersion.Stage.CHAMPION)
    predictions_create(model_version=champion, item_ids=open_item_ids(dataset.pk), update_items=True)


def _one_api_step(client, dataset: Dataset, held: dict) -> tuple[int, dict]:
    """Answer the held item (accepting the prediction) and get the next one; the statements it took, and the next."""
    item = held["item"]
    with CaptureQueriesContext(connection) as queries:
        answered = client.post(
            f"/api/items/{item['id']}/reviews/",
            {"label": item["predicted_label"], "shown_prediction_id": item["prediction_id"]},
            content_type="application/json",
        )
        served = client.get(f"/api/datasets/{dataset.pk}/next-item/")
    assert answered.status_code == 201, answered.content
    assert served.status_code == 200
    following = served.json()
    assert following["item"]["id"] != item["id"]
    return len(queries), following


@pytest.mark.parametrize("overlap", [1, 2])
def test_the_api_review_loop_takes_the_same_exact_number_of_queries_as_the_queue_triples(
    trained_dataset, reviewer, import_rows, broker, overlap
):
    Dataset.objects.filter(pk=trained_dataset.pk).update(overlap=overlap)
    dataset = Dataset.objects.get(pk=trained_dataset.pk)
    client = login(reviewer)
    held = client.get(f"/api/datasets/{dataset.pk}/next-item/").json()
    small = []
    for _ in range(2):
        count, held = _one_api_step(client, dataset, held)
        small.append(count)

    _grow_open_pool(dataset, import_rows, 60)  # 28 open -> 88 open, over 3x
    assert Item.objects.filter(dataset=dataset, queue_state=Item.QueueState.OPEN).count() >= 88
    large = []
    for _ in range(2):
        count, held = _one_api_step(client, dataset, held)
        large.append(count)

    assert Review.objects.filter(reviewer=reviewer).count() == 4
    assert small == large == [API_LOOP_QUERIES[overlap]] * 2, (small, large)
