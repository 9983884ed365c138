"""workflow_site/sql_writes.py writes the same rows as the ORM's save, and refuses what it cannot do."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection
from django.forms.models import model_to_dict
from django.test.utils import CaptureQueriesContext

from annotations.models import Item, ItemCountDelta, LabelClass, Review
from tests.conftest import synthetic_rows
from workflow_site import sql_writes


@pytest.fixture
def item(dataset, import_rows) -> Item:  # type: ignore[no-untyped-def]
    import_rows(synthetic_rows(2, start=500, labelled=False))
    return Item.objects.filter(dataset=dataset).order_by("pk").first()


def _review(item: Item, reviewer, **overrides) -> Review:  # type: ignore[no-untyped-def]
    values = {
        "item": item,
        "reviewer": reviewer,
        "decision": Review.Decision.CORRECT,
        "label": LabelClass.objects.filter(dataset_id=item.dataset_id).first(),
        "shown_prediction_id": 77,
        "shown_confidence": 0.61,
        "reason": "tab\there, quote ' and a backslash \\ and é",
        "reason_code": "",
        "flagged": True,
        "mode": Review.Mode.OPEN,
        "selection_strategy": "least_confidence",
        "selection_score": 0.39,
        "guideline_version": "v2",
        "time_on_item_ms": 1234,
    }
    return Review(**{**values, **overrides})


@pytest.mark.django_db
def test_an_inserted_review_reads_back_as_the_orm_would_have_written_it(item, reviewer) -> None:
    by_orm = _review(item, reviewer)
    by_orm.save()
    by_sql = sql_writes.insert(_review(item, reviewer))
    assert by_sql.pk is not None and by_sql.pk != by_orm.pk and not by_sql._state.adding
    written = Review.objects.get(pk=by_sql.pk)
    assert by_sql.created_at == written.created_at  # auto_now_add filled in, as save() does
    ignore = {"id", "created_at"}
    expected = {k: v for k, v in model_to_dict(Review.objects.get(pk=by_orm.pk)).items() if k not in ignore}
    assert {k: v for k, v in model_to_dict(written).items() if k not in ignore} == expected


@pytest.mark.django_db
def test_an_update_writes_only_the_named_fields_in_one_statement(item) -> None:
    stale = Item.objects.get(pk=item.pk)
    item.queue_state, item.answers_count, item.external_id = Item.QueueState.DONE, 1, "changed in memory only"
    with CaptureQueriesContext(connection) as queries:
        sql_writes.update(item, ["queue_state", "answers_count"])
    assert len(queries.captured_queries) == 1
    fresh = Item.objects.get(pk=item.pk)
    assert (fresh.queue_state, fresh.answers_count) == (Item.QueueState.DONE, 1)
    assert fresh.external_id == stale.external_id


@pytest.mark.django_db
def test_an_update_of_a_row_that_is_gone_raises_as_save_does(item) -> None:
    item.pk = 987654321
    with pytest.raises(DatabaseError, match="did not affect any rows"):
        sql_writes.update(item, ["queue_state"])


@pytest.mark.django_db
def test_insert_refuses_a_row_that_exists_and_a_field_left_to_the_database(item, reviewer) -> None:
    review = sql_writes.insert(_review(item, reviewer))
    with pytest.raises(ValueError, match="new rows only"):
        sql_writes.insert(review)
    # Item.random_key has a database default: the helper does not guess it.
    with pytest.raises(ValueError, match="random_key"):
        sql_writes.insert(Item(dataset=item.dataset, batch=item.batch, external_id="new", values={}, source_row=2))
    assert not Item.objects.filter(external_id="new").exists()


@pytest.mark.django_db
def test_counter_deltas_are_one_insert_whatever_their_number(dataset) -> None:
    from django.db import transaction

    from annotations.counters import counts_add, dataset_counts

    before = dataset_counts(dataset_ids=[dataset.pk])[dataset.pk]
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        counts_add(dataset_id=dataset.pk, deltas={"state:open": -2, "state:done": 2, "gold:1": 0, "gold:2": 2})
    assert len([q for q in queries.captured_queries if "itemcountdelta" in q["sql"].lower()]) == 1
    after = dataset_counts(dataset_ids=[dataset.pk])[dataset.pk]
    assert after["state:open"] - before.get("state:open", 0) == -2
    assert after["state:done"] - before.get("state:done", 0) == 2
    assert after["gold:2"] - before.get("gold:2", 0) == 2
    assert ItemCountDelta.objects.filter(dataset=dataset, key="gold:1").count() == 0  # zero deltas are not written
