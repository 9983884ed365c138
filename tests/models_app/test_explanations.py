"""The champion's predictions carry their explanation onto the item, in the same bulk write (issue 8, point 6)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from annotations.models import Item
from models_app.data import frame_for_items
from models_app.explanations import explanations_json
from models_app.ml.baseline import FeatureSpec
from models_app.models import ModelVersion, Prediction
from models_app.prediction import model_load, predictions_create


def _contributors(record: dict) -> list[dict]:
    """The stored [feature, value, contribution, direction] arrays as dicts, for readable assertions."""
    return [
        dict(zip(("feature", "value", "contribution", "direction"), c, strict=True)) for c in record["contributors"]
    ]


def _reset(dataset) -> tuple[ModelVersion, list[int]]:  # type: ignore[no-untyped-def]
    champion = ModelVersion.objects.get(dataset=dataset, stage=ModelVersion.Stage.CHAMPION)
    open_items = Item.objects.filter(dataset=dataset, queue_state="open")
    Prediction.objects.filter(model_version=champion).delete()
    open_items.update(prediction_id=None, predicted_by_version=None, prediction_explanation=None)
    return champion, list(open_items.order_by("pk").values_list("pk", flat=True))


def test_every_open_item_stores_the_explanation_of_its_shown_prediction(trained_dataset):
    champion, ids = _reset(trained_dataset)

    predictions_create(model_version=champion, item_ids=ids, update_items=True)

    classes = list(champion.class_names)
    model = model_load(champion)  # a logistic regression of the model families (models_app/ml/algorithms)
    frame = frame_for_items(ids, list(model.spec.features))
    expected = model.fitted.explain(frame, top_k=5)
    calibrated = model.fitted.info.calibration != "none"
    items = list(Item.objects.filter(pk__in=ids).select_related("predicted_label").order_by("pk"))
    for row, item in enumerate(items):
        stored = item.prediction_explanation
        assert stored["class"] == item.predicted_label.name
        assert stored["method"] == "linear" and stored["calibrated"] is calibrated and stored["kind"] == "features"
        assert stored["toward"] == f"pushes toward {item.predicted_label.name}"
        other = next(name for name in classes if name != item.predicted_label.name)
        assert stored["away"] == f"pushes toward {other}"
        contributors = _contributors(stored)
        shown = [(str(n), float(v)) for n, v in zip(expected.names[row], expected.values[row], strict=True) if n != ""]
        assert [c["feature"] for c in contributors] == [n for n, _ in shown]
        assert [c["contribution"] for c in contributors] == pytest.approx([v for _, v in shown], abs=5e-5)
        assert [c["value"] for c in contributors] == [item.values[c["feature"]] for c in contributors]
        for c in contributors:
            assert c["direction"] == (
                "toward" if c["contribution"] > 0 else "away" if c["contribution"] < 0 else "none"
            )
    # radius separates the classes: it leads every explanation and pushes toward the predicted class
    assert all(_contributors(item.prediction_explanation)[0]["feature"] == "radius" for item in items)
    assert all(_contributors(item.prediction_explanation)[0]["direction"] == "toward" for item in items)


def test_a_version_that_is_not_shown_computes_and_stores_no_explanation(trained_dataset, monkeypatch):
    champion, ids = _reset(trained_dataset)
    calls = []
    monkeypatch.setattr(
        "models_app.model_runtime.LoadedModel.explanations_json", lambda *args: calls.append(args) or []
    )

    predictions_create(model_version=champion, item_ids=ids, update_items=False)

    assert calls == []
    assert not Item.objects.filter(pk__in=ids, prediction_explanation__isnull=False).exists()


def test_an_answered_item_keeps_the_explanation_its_reviewer_saw(trained_dataset):
    champion, ids = _reset(trained_dataset)
    seen = {"method": "linear", "contributors": []}
    Item.objects.filter(pk=ids[3]).update(queue_state="done", prediction_explanation=seen)

    predictions_create(model_version=champion, item_ids=ids, update_items=True)

    assert Item.objects.get(pk=ids[3]).prediction_explanation == seen
    assert Item.objects.get(pk=ids[4]).prediction_explanation["contributors"]


def test_items_whose_model_cannot_be_explained_store_sql_null_next_to_their_prediction(trained_dataset, monkeypatch):
    champion, ids = _reset(trained_dataset)
    from models_app.model_runtime import LoadedModel

    real = LoadedModel.predict_with_explanations
    monkeypatch.setattr(
        LoadedModel,
        "predict_with_explanations",
        lambda model, frame, classes: (real(model, frame, classes)[0], [None] * len(frame)),
    )

    predictions_create(model_version=champion, item_ids=ids, update_items=True)

    items = Item.objects.filter(pk__in=ids)
    assert items.filter(predicted_by_version=champion.version).count() == len(ids)
    assert items.filter(prediction_explanation__isnull=True).count() == len(ids)  # not JSON null


class _Opaque:
    """No pipeline and no training means: the explanation cannot be made, the prediction still can."""

    classes_ = np.array(["no", "yes"])

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return np.tile([0.3, 0.7], (len(frame), 1))


def test_a_model_that_cannot_be_explained_gives_no_explanation_rather_than_a_made_up_one():
    frame = pd.DataFrame({"x": [1.0, 2.0]})
    assert explanations_json(_Opaque(), frame, [FeatureSpec("x", "float")], ["no", "yes"], np.array([1, 1])) == [
        None,
        None,
    ]


def test_the_json_is_valid_for_awkward_names_and_values():
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    odd = 'size "cm" <b>'
    specs = [
        FeatureSpec(odd, "float"),
        FeatureSpec("n", "integer"),
        FeatureSpec("flag", "boolean"),
        FeatureSpec("colour", "category", ("red", "blue")),
    ]
    train = pd.DataFrame(
        {odd: [1.5, 2.0, 3.0, 4.0], "n": [1.0, 2.0, 3.0, 4.0], "flag": [1.0, 0.0, 1.0, 0.0]}
        | {"colour": ["red", "blue", "blue", "red"]}
    )
    prepare = ColumnTransformer(
        [
            ("numeric", StandardScaler(), [odd, "n", "flag"]),
            ("category", OneHotEncoder(categories=[["red", "blue"]], handle_unknown="ignore"), ["colour"]),
        ]
    )
    model = Pipeline([("prepare", prepare), ("classify", LogisticRegression())]).fit(train, ["a", "b", "a", "b"])
    shown = train.copy()
    shown.loc[2, odd], shown.loc[2, "colour"] = np.nan, None  # missing values are shown as null

    texts = explanations_json(model, shown, specs, ["a", "b", "c"], np.array([0, 1, 2, 0]), top_k=4)

    records = [json.loads(text) for text in texts]
    assert {c["feature"]: c["value"] for c in _contributors(records[0])} == {
        odd: 1.5,
        "n": 1,
        "flag": True,
        "colour": "red",
    }
    assert records[1]["away"] == "pushes away from b"
    # 'c' was never seen in training: nothing pushes toward or away from it
    assert records[2]["class"] == "c"
    assert {c["feature"]: c["value"] for c in _contributors(records[2])} == {
        odd: None,
        "n": 3,
        "flag": True,
        "colour": None,
    }
    assert {c["direction"] for c in _contributors(records[2])} == {"none"}
    assert {c["contribution"] for c in _contributors(records[2])} == {0.0}


def test_an_explanation_that_fails_leaves_the_predictions_stored_without_one(trained_dataset, monkeypatch, caplog):
    from models_app.ml.algorithms.sklearn_models import SklearnModel

    champion, ids = _reset(trained_dataset)

    def broken(self, frame, *, top_k=5):  # type: ignore[no-untyped-def]
        raise RuntimeError("no explanation today")

    monkeypatch.setattr(SklearnModel, "predict_proba_and_explain", broken)

    predictions_create(model_version=champion, item_ids=ids, update_items=True)

    items = Item.objects.filter(pk__in=ids)
    assert items.filter(predicted_by_version=champion.version, predicted_confidence__gt=0).count() == len(ids)
    assert items.filter(prediction_explanation__isnull=True).count() == len(ids)
    assert "No explanation for model" in caplog.text
