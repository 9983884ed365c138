"""Calibration is chosen by cross-validated log loss, skipped on small data, and never makes the demo worse."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from models_app.ml.algorithms import algorithm_get
from models_app.ml.algorithms.base import FeatureSpec, ModelSpec
from models_app.ml.algorithms.calibration import (
    ISOTONIC,
    NONE,
    SIGMOID,
    TEMPERATURE,
    Calibrator,
    calibration_candidates,
    calibration_choose,
    calibration_fit,
    calibration_skip_reason,
    expected_calibration_error,
    softmax,
)
from models_app.ml.algorithms.sklearn_explain import model_logits


def _binary_logits(n: int, seed: int, overconfidence: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True log-odds z, labels drawn from them, and logits z × overconfidence; folds 0-4."""
    rng = np.random.default_rng(seed)
    z = rng.normal(scale=2.0, size=n)
    codes = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(np.int64)
    logits = np.column_stack([np.zeros(n), z * overconfidence])
    return logits, codes, np.arange(n) % 5


def _log_loss(proba: np.ndarray, codes: np.ndarray) -> float:
    return float(-np.log(np.clip(proba[np.arange(len(codes)), codes], 1e-15, 1)).mean())


def test_the_demo_seed_of_24_rows_is_not_calibrated_and_its_holdout_ece_is_no_worse_than_before() -> None:
    """Today's model always calibrated with sigmoid: holdout ECE 0.218 vs 0.049 for plain regression (issue 9)."""
    from annotations import demo_data
    from models_app.ml import baseline

    frame, features, class_names = demo_data.load()
    files = demo_data.split_csvs(frame)
    seed = pd.read_csv(io.BytesIO(files["wdbc-seed-labelled.csv"]))
    holdout = pd.read_csv(io.BytesIO(files["wdbc-holdout.csv"]))
    names = [f.name for f in features]
    spec = ModelSpec(tuple(FeatureSpec(name, "float") for name in names), tuple(class_names))
    model = algorithm_get("logistic_regression").fit(
        seed[names], seed["label"].to_numpy(), spec=spec, params={}, seed=0
    )
    assert model.info.calibration == NONE
    assert model.info.calibration_reason.startswith("none: 24 rows")
    truth = np.array([class_names.index(label) for label in holdout["label"]])
    new_ece = expected_calibration_error(model.predict_proba(holdout[names]), truth)
    old = baseline.train(
        seed[names], list(seed["label"]), [baseline.FeatureSpec(n, "float") for n in names], class_names, seed=0
    )
    old_ece = expected_calibration_error(baseline.predict_proba(old, holdout[names], class_names), truth)
    assert new_ece < 0.1 < old_ece


def test_overconfident_scores_get_a_map_that_lowers_the_cross_validated_log_loss() -> None:
    logits, codes, folds = _binary_logits(2000, seed=1, overconfidence=3.0)
    choice = calibration_choose(logits, codes, folds, calibration_candidates({"a": 1000, "b": 1000}))
    assert choice.calibrator.method in (TEMPERATURE, SIGMOID, ISOTONIC)
    assert choice.cv_log_loss[choice.calibrator.method] < choice.cv_log_loss[NONE] - 0.05
    assert choice.reason.startswith(f"{choice.calibrator.method}: 5-fold stratified CV log loss on 2000 rows")
    # the fitted map undoes the overconfidence on fresh rows from the same source
    fresh, fresh_codes, _ = _binary_logits(2000, seed=2, overconfidence=3.0)
    assert _log_loss(choice.calibrator.apply(fresh), fresh_codes) < _log_loss(softmax(fresh), fresh_codes) - 0.05


def test_well_calibrated_scores_are_left_alone_with_the_figures_in_the_reason() -> None:
    logits, codes, folds = _binary_logits(2000, seed=3, overconfidence=1.0)
    choice = calibration_choose(logits, codes, folds, (TEMPERATURE, SIGMOID))
    assert choice.calibrator.method == NONE
    assert "no map lowered" in choice.reason and "uncalibrated" in choice.reason
    np.testing.assert_array_equal(choice.calibrator.apply(logits), softmax(logits))


def test_small_data_is_not_judged_and_isotonic_needs_a_thousand_rows() -> None:
    assert "24 rows" in calibration_skip_reason({"benign": 12, "malignant": 12})
    assert "smallest class ('rare') has 10" in calibration_skip_reason({"common": 990, "rare": 10})
    assert calibration_skip_reason({"a": 150, "b": 100}) is None
    assert ISOTONIC not in calibration_candidates({"a": 500, "b": 400})
    assert ISOTONIC in calibration_candidates({"a": 600, "b": 400})


def test_a_balanced_class_weight_on_rare_positives_is_recalibrated_and_that_helps_on_new_rows() -> None:
    """Weighting a 10% class up shifts every probability toward it; the CV choice must bring them back."""

    def data(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
        rng = np.random.default_rng(seed)
        x = rng.normal(size=(n, 3))
        positive = rng.random(n) < 1 / (1 + np.exp(-(1.5 * x[:, 0] - 3.0)))
        return pd.DataFrame(x, columns=["a", "b", "c"]), np.where(positive, "yes", "no")

    spec = ModelSpec(tuple(FeatureSpec(c, "float") for c in "abc"), ("no", "yes"))
    frame, labels = data(3000, seed=4)
    model = algorithm_get("logistic_regression").fit(
        frame, labels, spec=spec, params={"class_weight_balanced": True}, seed=0
    )
    assert model.info.calibration != NONE, model.info.calibration_reason
    fresh, truth = data(3000, seed=5)
    codes = (truth == "yes").astype(np.int64)
    raw = softmax(model_logits(model.pipeline[-1], model.pipeline[0].transform(fresh)))
    assert _log_loss(model.predict_proba(fresh), codes) < _log_loss(raw, codes) - 0.05


@pytest.mark.parametrize("method", [TEMPERATURE, SIGMOID, ISOTONIC])
def test_every_map_gives_probabilities_and_survives_its_saved_state(method: str) -> None:
    rng = np.random.default_rng(6)
    logits = rng.normal(scale=3.0, size=(1500, 3))
    codes = rng.integers(0, 3, 1500)
    fitted = calibration_fit(method, logits, codes)
    proba = fitted.apply(logits)
    assert proba.shape == (1500, 3) and (proba >= 0).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(Calibrator.from_state(fitted.state()).apply(logits), proba)


def test_expected_calibration_error_tells_honest_from_overconfident_probabilities() -> None:
    logits, codes, _ = _binary_logits(20_000, seed=7, overconfidence=1.0)
    honest = expected_calibration_error(softmax(logits), codes)
    overconfident = expected_calibration_error(softmax(logits * 4), codes)
    assert honest < 0.02 < 0.08 < overconfident
