"""models_app/ml/explain.py: per-feature contributions checked against numbers worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from models_app.ml import baseline
from models_app.ml.explain import (
    LINEAR,
    REPLACEMENT,
    ExplanationError,
    explain,
    model_baseline,
    top_contributors,
)

CLASSES = ["no", "yes"]


def _pipeline(numeric: list[str], categorical: dict[str, list[str]] | None = None) -> Pipeline:
    transformers = [("numeric", StandardScaler(), numeric)]
    if categorical:
        transformers.append(
            ("category", OneHotEncoder(categories=list(categorical.values()), handle_unknown="ignore"), [*categorical])
        )
    return Pipeline([("prepare", ColumnTransformer(transformers)), ("classify", LogisticRegression())])


def _fixed_linear_model() -> Pipeline:
    """a: mean 1, sd 2 (values -1, 3); b: mean 10, sd 5 (values 5, 15); then coefficients set by hand.

    logit(yes) = 0.5·(a − 1)/2 − 1.0·(b − 10)/5 + 0.1
    """
    frame = pd.DataFrame({"a": [-1.0, 3.0, -1.0, 3.0], "b": [5.0, 15.0, 15.0, 5.0]})
    model = _pipeline(["a", "b"]).fit(frame, ["no", "yes", "no", "yes"])
    regression = model.named_steps["classify"]
    regression.coef_ = np.array([[0.5, -1.0]])
    regression.intercept_ = np.array([0.1])
    return model


def test_linear_contributions_are_coefficient_times_standardised_value_largest_first():
    model = _fixed_linear_model()
    # row 0: z = (1, -2): 0.5·1 = 0.5 and -1·-2 = 2.0 toward yes (logit 2.6).
    # row 1: z = (-1, 2): 0.5·-1 = -0.5, -1·2 = -2.0 toward yes (logit -2.4): no, so signs flip.
    frame = pd.DataFrame({"a": [3.0, -1.0], "b": [0.0, 20.0]})
    result = explain(model, frame, CLASSES)
    assert result.method == LINEAR and not result.calibrated
    assert result.features == ["a", "b"]
    assert result.class_index.tolist() == [1, 0]
    assert result.feature_index.tolist() == [[1, 0], [1, 0]]
    assert np.allclose(result.contribution, [[2.0, 0.5], [2.0, 0.5]])


def test_contributions_plus_intercept_are_the_predicted_class_logit():
    model = _fixed_linear_model()
    frame = pd.DataFrame({"a": [3.0, -1.0, 0.2], "b": [0.0, 20.0, 11.0]})
    result = explain(model, frame, CLASSES, top_k=2)
    p_yes = model.predict_proba(frame)[:, 1]
    logit_of_predicted = np.where(result.class_index == 1, 1, -1) * np.log(p_yes / (1 - p_yes))
    intercept = np.where(result.class_index == 1, 0.1, -0.1)
    assert np.allclose(result.contribution.sum(axis=1) + intercept, logit_of_predicted)


def test_explaining_a_given_class_rather_than_the_predicted_one():
    model = _fixed_linear_model()
    frame = pd.DataFrame({"a": [3.0], "b": [0.0]})
    result = explain(model, frame, CLASSES, predicted=np.array([0]))
    assert np.allclose(result.contribution, [[-2.0, -0.5]])


def test_top_k_defaults_to_five_and_ties_keep_schema_order():
    contributions = np.array([[0.1, -3.0, 0.5, 3.0, 0.0, 2.0, -0.2]])
    index, values = top_contributors(contributions, 5)
    assert index.tolist() == [[1, 3, 5, 2, 6]]
    assert values.tolist() == [[-3.0, 3.0, 2.0, 0.5, -0.2]]
    assert top_contributors(contributions, 50)[0].shape == (1, 7)


def test_a_constant_feature_contributes_nothing_and_comes_last():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"flat": 4.0, "x": rng.normal(size=60), "y": rng.normal(size=60)})
    labels = np.where(frame["x"] + 0.5 * frame["y"] > 0, "yes", "no")
    model = _pipeline(["flat", "x", "y"]).fit(frame, labels)
    result = explain(model, frame, CLASSES, top_k=3)
    # The scaler gives a constant column sd 1 and centres it at 4: its standardised value is 0 for every row.
    assert (result.feature_index[:, 2] == 0).all()
    assert np.allclose(result.contribution[:, 2], 0.0)


def test_one_class_dominates_every_row_is_explained_toward_it():
    # 57 'no' and 3 'yes': every row predicts 'no', so each contribution is -(coef · z) of the 'yes' logit.
    frame = pd.DataFrame({"x": np.arange(60, dtype=float)})
    labels = ["yes" if i in (5, 30, 55) else "no" for i in range(60)]
    model = _pipeline(["x"]).fit(frame, labels)
    result = explain(model, frame, CLASSES, top_k=1)
    assert (result.class_index == 0).all()
    scaler, regression = model.named_steps["prepare"].named_transformers_["numeric"], model.named_steps["classify"]
    z = (frame["x"].to_numpy() - scaler.mean_[0]) / scaler.scale_[0]
    assert np.allclose(result.contribution[:, 0], -regression.coef_[0, 0] * z)


def test_a_category_contributes_its_one_hot_coefficient_and_an_unknown_one_nothing():
    frame = pd.DataFrame({"x": [0.0, 1.0, 0.0, 1.0], "colour": ["red", "blue", "blue", "red"]})
    model = _pipeline(["x"], {"colour": ["red", "blue"]}).fit(frame, ["no", "yes", "yes", "no"])
    regression = model.named_steps["classify"]
    regression.coef_ = np.array([[0.0, 1.5, -0.7]])  # x, colour=red, colour=blue
    regression.intercept_ = np.array([0.0])
    result = explain(model, pd.DataFrame({"x": [0.5, 0.5], "colour": ["red", "green"]}), CLASSES, top_k=2)
    # x = 0.5 is the training mean: z = 0. red: +1.5 toward yes (predicted). green: unknown, all zeros.
    assert result.class_index.tolist() == [1, 0]
    assert result.feature_index[0].tolist() == [1, 0]
    assert np.allclose(result.contribution, [[1.5, 0.0], [0.0, 0.0]])


def test_calibrated_baseline_is_explained_by_the_mean_of_its_folds_logistic_regressions():
    specs = [baseline.FeatureSpec("x", "float"), baseline.FeatureSpec("y", "float")]
    rng = np.random.default_rng(1)
    rows = [{"x": float(a), "y": float(b)} for a, b in rng.normal(size=(80, 2))]
    frame = baseline.frame_from_rows(rows, specs)
    labels = ["yes" if r["x"] - r["y"] > 0 else "no" for r in rows]
    model = baseline.train(frame, labels, specs, CLASSES)
    result = explain(model, frame.head(3), CLASSES, top_k=2)
    assert result.method == LINEAR and result.calibrated
    folds = model.named_steps["classify"].calibrated_classifiers_
    coef = np.mean([f.estimator.coef_[0] for f in folds], axis=0)
    scaler = model.named_steps["prepare"].named_transformers_["numeric"]
    z = (frame.head(3).to_numpy() - scaler.mean_) / scaler.scale_
    sign = np.where(result.class_index == 1, 1.0, -1.0)[:, None]
    expected = np.take_along_axis(sign * coef * z, result.feature_index, axis=1)
    assert np.allclose(result.contribution, expected)


def test_multiclass_contribution_is_the_predicted_class_own_logit_term():
    frame = pd.DataFrame({"x": [0.0, 1.0, 2.0, 0.0, 1.0, 2.0], "y": [1.0, 0.0, 1.0, 0.0, 1.0, 0.0]})
    model = _pipeline(["x", "y"]).fit(frame, ["a", "b", "c", "a", "b", "c"])
    result = explain(model, frame, ["a", "b", "c"], top_k=2)
    logits = model.decision_function(frame)
    intercepts = model.named_steps["classify"].intercept_
    rows = np.arange(len(frame))
    assert np.allclose(
        result.contribution.sum(axis=1) + intercepts[result.class_index], logits[rows, result.class_index]
    )


class _Product:
    """Not linear: p(yes) = sigmoid(u · v)."""

    classes_ = np.array(CLASSES)

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        p = 1 / (1 + np.exp(-(frame["u"].to_numpy() * frame["v"].to_numpy())))
        return np.column_stack([1 - p, p])


def test_a_non_linear_model_is_explained_by_replacing_each_feature_with_its_baseline():
    frame = pd.DataFrame({"u": [2.0, 1.0], "v": [3.0, -0.5]})
    result = explain(_Product(), frame, CLASSES, baseline={"u": 1.0, "v": 0.0})
    assert result.method == REPLACEMENT
    # row 0: log-odds(yes) = 6; u → 1: 3, so u gives 3; v → 0: 0, so v gives 6.
    # row 1: log-odds(yes) = -0.5 → predicts no, log-odds(no) = 0.5; u → 1: unchanged (0); v → 0: 0, v gives 0.5.
    assert result.class_index.tolist() == [1, 0]
    assert result.feature_index.tolist() == [[1, 0], [1, 0]]
    assert np.allclose(result.contribution, [[6.0, 3.0], [0.5, 0.0]])


def test_a_certain_model_has_finite_clipped_contributions():
    frame = pd.DataFrame({"u": [100.0], "v": [100.0]})  # p(yes) = 1 in floating point
    result = explain(_Product(), frame, CLASSES, baseline={"u": 0.0, "v": 0.0})
    clipped = math.log((1 - 1e-9) / 1e-9)  # log-odds at the clip, minus log-odds 0 at the baseline
    assert np.allclose(result.contribution, [[clipped, clipped]])


def test_replacement_on_a_plain_logistic_regression_gives_the_linear_numbers():
    model = _fixed_linear_model()
    frame = pd.DataFrame({"a": [3.0, -1.0, 0.2], "b": [0.0, 20.0, 11.0]})
    linear = explain(model, frame, CLASSES)
    from models_app.ml.explain import replacement_contributions

    full = replacement_contributions(model, frame, CLASSES, linear.class_index, model_baseline(model))
    assert np.allclose(np.take_along_axis(full, linear.feature_index, axis=1), linear.contribution)


def test_a_model_without_training_statistics_needs_a_baseline_and_says_so():
    frame = pd.DataFrame({"u": [1.0], "v": [1.0]})
    with pytest.raises(ExplanationError, match="_Product has no fitted scaler"):
        explain(_Product(), frame, CLASSES)
    with pytest.raises(ExplanationError, match="No baseline value for feature\\(s\\) v"):
        explain(_Product(), frame, CLASSES, baseline={"u": 0.0})


def test_bad_arguments_are_refused_by_name():
    model = _fixed_linear_model()
    frame = pd.DataFrame({"a": [1.0], "b": [1.0]})
    with pytest.raises(ExplanationError, match="top_k must be at least 1"):
        explain(model, frame, CLASSES, top_k=0)
    with pytest.raises(ExplanationError, match="predicted has shape"):
        explain(model, frame, CLASSES, predicted=np.array([0, 1]))
