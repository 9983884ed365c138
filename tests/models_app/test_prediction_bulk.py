"""Predictions written in bulk (issue 7, point 2) are exactly what the model says, row by row."""

from __future__ import annotations

import numpy as np
import pytest

from annotations.models import Item
from models_app.data import feature_specs, frame_for_items
from models_app.ml.baseline import frame_from_rows
from models_app.models import ModelVersion, Prediction
from models_app.prediction import model_load, predictions_create
from tests.helpers import champion_predictions_removed


def test_the_column_wise_frame_equals_the_row_by_row_frame_in_the_order_asked(trained_dataset):
    specs = feature_specs(trained_dataset)
    items = list(Item.objects.filter(dataset=trained_dataset).order_by("pk"))
    shuffled = [items[i] for i in np.random.default_rng(3).permutation(len(items))]
    ids = [item.pk for item in shuffled]

    frame = frame_for_items(ids, specs)

    expected = frame_from_rows([item.values for item in shuffled], specs)
    assert list(frame.columns) == [spec.name for spec in specs]
    for spec in specs:
        if spec.dtype == "category":
            assert frame[spec.name].tolist() == expected[spec.name].tolist()
        else:
            assert np.allclose(frame[spec.name].to_numpy(), expected[spec.name].to_numpy(), equal_nan=True)


def _unpredicted(dataset):  # type: ignore[no-untyped-def]
    """The champion, and the dataset's open items (in id order) with its predictions removed."""
    champion, ids = champion_predictions_removed(dataset)
    return champion, Item.objects.filter(dataset=dataset, queue_state="open").order_by("pk"), ids


def test_every_open_item_shows_exactly_the_champions_probabilities(trained_dataset):
    champion, open_items, ids = _unpredicted(trained_dataset)

    assert predictions_create(model_version=champion, item_ids=ids, update_items=True) == len(ids)

    model = model_load(champion)
    classes = list(champion.class_names)
    proba = model.predict_proba(frame_for_items(ids, list(model.spec.features)), classes)
    predictions = {p.item_id: p for p in Prediction.objects.filter(model_version=champion).select_related("label")}
    for row, item in zip(proba, open_items, strict=True):
        stored = predictions[item.pk]
        best = int(row.argmax())
        assert stored.label.name == classes[best]
        assert stored.confidence == pytest.approx(row[best])
        assert [stored.probabilities[name] for name in classes] == pytest.approx(list(row), abs=1e-6)
        assert item.prediction_id == stored.pk
        assert item.predicted_label_id == stored.label_id
        assert item.predicted_confidence == pytest.approx(stored.confidence)
        assert item.queue_priority == pytest.approx(stored.confidence)
        assert item.predicted_probabilities == stored.probabilities
        assert item.predicted_by_version == champion.version


def test_an_answered_item_in_the_chunk_keeps_the_prediction_its_reviewer_saw(trained_dataset):
    champion = ModelVersion.objects.get(dataset=trained_dataset, stage=ModelVersion.Stage.CHAMPION)
    ids = list(
        Item.objects.filter(dataset=trained_dataset, queue_state="open").order_by("pk").values_list("pk", flat=True)
    )
    answered = ids[5]
    Item.objects.filter(pk=answered).update(queue_state="done", predicted_by_version=None, prediction_id=None)
    Prediction.objects.filter(model_version=champion).delete()

    predictions_create(model_version=champion, item_ids=ids, update_items=True)

    item = Item.objects.get(pk=answered)
    assert (item.predicted_by_version, item.prediction_id) == (None, None)


def test_predicting_the_next_chunk_while_one_is_written_keeps_every_item_its_own_prediction(trained_dataset):
    """Chunks of 7 on the prefetch thread: each item still shows the probabilities the model gives it alone."""
    from unittest import mock

    from models_app import prediction

    champion, open_items, ids = _unpredicted(trained_dataset)
    assert len(ids) > 3 * 7, "several chunks, so several overlap"

    with mock.patch.object(prediction, "CHUNK", 7):
        assert predictions_create(model_version=champion, item_ids=list(reversed(ids)), update_items=True) == len(ids)

    model = model_load(champion)
    classes = list(champion.class_names)
    for item in open_items:
        alone = model.predict_proba(frame_for_items([item.pk], list(model.spec.features)), classes)[0]
        assert item.predicted_by_version == champion.version
        assert [item.predicted_probabilities[name] for name in classes] == pytest.approx(list(alone), abs=1e-6)
        assert item.prediction_explanation is not None


def test_a_model_failing_on_a_later_chunk_raises_and_leaves_that_chunk_unwritten(trained_dataset):
    """An error on the prefetch thread reaches the caller; the chunks written before it stay, each whole."""
    from unittest import mock

    from models_app import prediction

    champion, open_items, ids = _unpredicted(trained_dataset)
    real_predict = prediction._chunk_predict

    def fail_on_the_third_chunk(model, chunk, *args, **kwargs):
        if chunk[0] == ids[14]:
            raise RuntimeError("model broke on chunk 3")
        return real_predict(model, chunk, *args, **kwargs)

    with (
        mock.patch.object(prediction, "CHUNK", 7),
        mock.patch.object(prediction, "_chunk_predict", fail_on_the_third_chunk),
        pytest.raises(RuntimeError, match="chunk 3"),
    ):
        predictions_create(model_version=champion, item_ids=ids, update_items=True)

    written = set(Prediction.objects.filter(model_version=champion).values_list("item_id", flat=True))
    assert written == set(ids[:14])
    assert set(open_items.filter(predicted_by_version=champion.version).values_list("pk", flat=True)) == set(ids[:14])
