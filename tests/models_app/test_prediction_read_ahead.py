"""How a refresh moves its reads and its row texts off the writing connection (models_app/prediction.py):
outside a transaction on PostgreSQL the prefetch thread reads each chunk on its own connection; inside one,
every read stays on the caller's; either way each row is written exactly as the model gave it."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from django.db import connection, transaction

from models_app import prediction
from models_app.models import ModelVersion, Prediction
from models_app.prediction import _chunk_predict, _predictions_insert, model_load, predictions_create
from tests.helpers import champion_predictions_removed, database_sessions


def _record_reading_threads(monkeypatch) -> list[str]:  # type: ignore[no-untyped-def]
    threads: list[str] = []
    real = prediction.frame_for_items

    def frame_for_items(item_ids, specs):  # type: ignore[no-untyped-def]
        threads.append(threading.current_thread().name)
        return real(item_ids, specs)

    monkeypatch.setattr(prediction, "frame_for_items", frame_for_items)
    return threads


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="the read-ahead connection is PostgreSQL's")
def test_outside_a_transaction_the_prefetch_thread_reads_on_its_own_connection_and_closes_it(
    trained_dataset, monkeypatch
):
    monkeypatch.setattr(prediction, "CHUNK", 7)
    champion, ids = champion_predictions_removed(trained_dataset)
    threads = _record_reading_threads(monkeypatch)
    before = database_sessions()

    assert predictions_create(model_version=champion, item_ids=ids, update_items=True) == len(ids)

    assert threads and all(name.startswith("predict") for name in threads)
    assert database_sessions() == before
    model = model_load(champion)
    classes = list(champion.class_names)
    for item in trained_dataset.items.filter(pk__in=ids):
        alone = model.predict_proba(prediction.frame_for_items([item.pk], list(model.spec.features)), classes)[0]
        assert item.predicted_by_version == champion.version
        assert [item.predicted_probabilities[name] for name in classes] == pytest.approx(list(alone), abs=1e-6)


def test_inside_a_transaction_every_read_stays_on_the_callers_connection(trained_dataset, monkeypatch):
    monkeypatch.setattr(prediction, "CHUNK", 7)
    champion, ids = champion_predictions_removed(trained_dataset)
    threads = _record_reading_threads(monkeypatch)

    with transaction.atomic():
        assert predictions_create(model_version=champion, item_ids=ids, update_items=True) == len(ids)

    assert threads and set(threads) == {threading.current_thread().name}


class _FixedModel:
    """Stands in for a loaded model: the same probabilities for every row."""

    def __init__(self, row: list[float]) -> None:
        self.row = row

    def predict_proba(self, frame, classes):  # type: ignore[no-untyped-def]
        return np.tile(self.row, (len(frame), 1))


@pytest.mark.parametrize(
    "names", [['50% "sure"', "back\\slash"], ["tab\there", "%s %d"], ["naïve", "\\N"]], ids=["percent", "tab", "null"]
)
def test_class_names_with_format_or_copy_escapes_are_written_as_given(trained_dataset, names):
    champion = ModelVersion.objects.get(dataset=trained_dataset, stage=ModelVersion.Stage.CHAMPION)
    item_ids = list(trained_dataset.items.filter(queue_state="open").order_by("pk").values_list("pk", flat=True)[:3])
    labels = list(trained_dataset.label_classes.order_by("position").values_list("pk", flat=True))
    Prediction.objects.filter(model_version=champion, item_id__in=item_ids).delete()
    copy_prefix = str(champion.pk) if connection.vendor == "postgresql" else None

    predicted = _chunk_predict(
        _FixedModel([0.25, 0.75]),  # type: ignore[arg-type]
        item_ids,
        [None] * len(item_ids),  # type: ignore[arg-type]
        names,
        labels,
        explain=False,
        copy_prefix=copy_prefix,
    )
    with transaction.atomic():
        assert _predictions_insert(champion, predicted) == item_ids

    stored = Prediction.objects.filter(model_version=champion, item_id__in=item_ids).order_by("item_id")
    assert [p.probabilities for p in stored] == [{names[0]: 0.25, names[1]: 0.75}] * len(item_ids)
    assert {(p.label_id, p.confidence) for p in stored} == {(labels[1], 0.75)}
