"""workflow_site/sql_rows.py: instances built from hand-written SQL equal the ORM's, field by field."""

from __future__ import annotations

import pytest
from django.db import connection

from annotations.item_rows import item_joins, item_lock_with_dataset, item_select_columns, items_from_rows
from annotations.models import Dataset, Item
from workflow_site import sql_rows


def _same(built, fetched) -> None:
    assert type(built) is type(fetched)
    for field in type(fetched)._meta.concrete_fields:
        ours, theirs = getattr(built, field.attname), getattr(fetched, field.attname)
        assert ours == theirs, field.attname
        assert type(ours) is type(theirs), field.attname


def test_a_dataset_built_from_its_row_equals_the_orms(trained_dataset):
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {sql_rows.columns(Dataset, 'd')} FROM {sql_rows.table(Dataset)} d WHERE d.id = %s",
            [trained_dataset.pk],
        )
        built = sql_rows.build(Dataset, cursor.fetchone())
    _same(built, Dataset.objects.get(pk=trained_dataset.pk))
    assert not built._state.adding and built._state.db == connection.alias


def test_an_item_with_label_and_batch_equals_select_related(trained_dataset):
    fetched = (
        Item.objects.select_related("predicted_label", "batch")
        .filter(dataset=trained_dataset, predicted_label__isnull=False)
        .first()
    )
    assert fetched.predicted_label is not None and fetched.values  # JSON, a label, a batch: the converters matter
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {item_select_columns('i')} FROM {sql_rows.table(Item)} i{item_joins('i')} WHERE i.id = %s",
            [fetched.pk],
        )
        (built,) = items_from_rows(cursor.fetchall())
    _same(built, fetched)
    _same(built.predicted_label, fetched.predicted_label)
    _same(built.batch, fetched.batch)


def test_an_item_with_no_prediction_has_no_label(trained_dataset):
    item = Item.objects.filter(dataset=trained_dataset).first()
    Item.objects.filter(pk=item.pk).update(predicted_label=None)
    locked = item_lock_with_dataset(item.pk)
    assert locked.predicted_label is None and locked.predicted_label_id is None
    _same(locked.dataset, Dataset.objects.get(pk=trained_dataset.pk))


def test_locking_a_missing_item_raises_does_not_exist(db):
    import pytest

    with pytest.raises(Item.DoesNotExist):
        item_lock_with_dataset(987654321)


def test_an_id_beyond_the_columns_range_is_no_such_record_not_an_error(dataset, reviewer, model_admin):
    from tests.helpers import login

    huge = 209439389628898260203222845112713216  # what the API fuzzer sent
    assert not sql_rows.pk_in_range(Item, huge) and sql_rows.pk_in_range(Item, 1)
    client = login(model_admin)
    assert client.post(f"/api/datasets/{huge}/training-runs/", {}, content_type="application/json").status_code == 403
    assert client.get(f"/datasets/{huge}/").status_code == 403
    reviewer_client = login(reviewer)
    assert reviewer_client.get(f"/api/datasets/{huge}/next-item/").status_code == 403
    assert reviewer_client.post(f"/api/items/{huge}/reviews/", {}, content_type="application/json").status_code == 403
    with pytest.raises(Item.DoesNotExist):
        item_lock_with_dataset(huge)
