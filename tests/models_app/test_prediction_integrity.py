"""A prediction chunk's foreign keys, checked set-based where the role may skip the row triggers
(models_app/prediction_integrity.py): the same rows as with the triggers, the same refusals, the same locks."""

from __future__ import annotations

import psycopg
import pytest
from django.db import IntegrityError, connection, transaction

from annotations.imports import import_batch_create
from annotations.models import Item
from models_app import prediction, prediction_integrity
from models_app.models import ModelVersion, Prediction
from models_app.prediction import predictions_create
from models_app.prediction_integrity import prediction_bypass_possible, prediction_references_check
from tests.helpers import champion_predictions_removed, csv_bytes, database_connect, synthetic_rows

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's row triggers")

_SHOWN = ("prediction_id", "predicted_label_id", "predicted_confidence", "predicted_by_version", "queue_priority")


def _outcome(champion, ids):  # type: ignore[no-untyped-def]
    predictions = Prediction.objects.filter(model_version=champion).order_by("item_id")
    shown = Item.objects.filter(pk__in=ids).order_by("pk").values_list("pk", *_SHOWN)
    by_id = {p.pk: p.item_id for p in predictions}
    # prediction ids differ between runs: compare what each item shows by the item the prediction is for
    return (
        list(predictions.values_list("item_id", "label_id", "confidence", "probabilities")),
        [(pk, by_id.get(prediction_id), *rest) for pk, prediction_id, *rest in shown],
    )


def test_the_set_based_checks_are_used_where_the_role_may_skip_the_row_triggers(trained_dataset):
    assert prediction_bypass_possible(), "the test database's role is a superuser"


def test_the_row_triggers_are_kept_when_the_schema_is_not_the_one_the_checks_know(trained_dataset, monkeypatch):
    expected = prediction_integrity._expected()
    del expected[Prediction]["label"]
    monkeypatch.setattr(prediction_integrity, "_expected", lambda: expected)

    assert not prediction_bypass_possible()


def test_a_refresh_writes_the_same_rows_with_the_set_based_checks_as_with_the_triggers(trained_dataset, monkeypatch):
    monkeypatch.setattr(prediction, "CHUNK", 7)
    champion, ids = champion_predictions_removed(trained_dataset)
    with transaction.atomic():
        assert predictions_create(model_version=champion, item_ids=ids, update_items=True) == len(ids)
        with connection.cursor() as cursor:  # the audit event and everything after ran with the triggers on
            cursor.execute("SHOW session_replication_role")
            assert cursor.fetchone()[0] == "origin"
    set_based = _outcome(champion, ids)

    champion_predictions_removed(trained_dataset)
    monkeypatch.setattr(prediction, "prediction_bypass_possible", lambda: False)
    assert predictions_create(model_version=champion, item_ids=ids, update_items=True) == len(ids)

    assert _outcome(champion, ids) == set_based
    assert len(set_based[0]) == len(ids) and all(row[1] is not None for row in set_based[1])


def test_the_set_based_checks_refuse_a_reference_that_is_gone(trained_dataset):
    champion = ModelVersion.objects.get(dataset=trained_dataset, stage=ModelVersion.Stage.CHAMPION)
    label = trained_dataset.label_classes.first()
    item = Item.objects.filter(dataset=trained_dataset).first()
    good = {"model_version_id": champion.pk, "label_ids": [label.pk], "inserted_item_ids": [item.pk]}

    with transaction.atomic():
        prediction_references_check(**good, updated_item_ids=[])  # all there
    for gone, named in [
        ({"model_version_id": 999_999_999}, "model version 999999999"),
        ({"label_ids": [label.pk, 999_999_998]}, "label class 999999998"),
        ({"inserted_item_ids": [item.pk, 999_999_997]}, "item 999999997"),
    ]:
        with pytest.raises(IntegrityError, match=named), transaction.atomic():
            prediction_references_check(**{**good, **gone}, updated_item_ids=[])


@pytest.fixture(autouse=True)
def _upload_dir(settings, tmp_path):
    settings.LOUPE_UPLOAD_DIR = tmp_path / "uploads"


@pytest.mark.django_db(transaction=True)
def test_the_checked_items_and_labels_are_locked_until_commit_as_the_triggers_would(dataset, model_admin):
    # Committed rows, so that another connection sees them; no model version is needed for the locks, which
    # are taken before the check reports what is missing (here: the version, so the check raises at its end).
    import_batch_create(
        dataset=dataset, user=model_admin, file_name="a.csv", data=csv_bytes(synthetic_rows(2)), purpose="review"
    )
    item = Item.objects.filter(dataset=dataset).first()
    label = dataset.label_classes.first()
    other = database_connect()
    try:
        with transaction.atomic():
            with pytest.raises(IntegrityError, match="model version 999999999"):
                prediction_references_check(
                    model_version_id=999_999_999, label_ids=[label.pk], inserted_item_ids=[item.pk], updated_item_ids=[]
                )
            # FOR KEY SHARE, as the trigger takes it: a DELETE (which needs FOR UPDATE) waits for the COMMIT.
            for table, pk in ((Item._meta.db_table, item.pk), (label._meta.db_table, label.pk)):
                with pytest.raises(psycopg.errors.LockNotAvailable):
                    other.execute(f"SELECT 1 FROM {table} WHERE id = %s FOR UPDATE NOWAIT", [pk])
                other.rollback()
        other.execute(f"SELECT 1 FROM {Item._meta.db_table} WHERE id = %s FOR UPDATE NOWAIT", [item.pk])  # released
    finally:
        other.rollback()
        other.close()
