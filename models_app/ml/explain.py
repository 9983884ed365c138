"""Why the model predicted what it did: each feature's contribution to the predicted class, per item.

Two methods, chosen by the model's shape, both vectorised over a whole batch
(numpy over rows; the only Python loops are over features or top-k slots):

- **linear** (today's baseline: a ColumnTransformer, then a logistic
  regression, perhaps inside a sigmoid CalibratedClassifierCV). A feature's
  contribution is its coefficient × its prepared value: for a standardised
  number, coef × (x − training mean) / training sd; for a category, the
  coefficient of its one-hot column (0 for a category the model never saw).
  The contributions plus the intercept are the logit of the predicted class,
  so they add up exactly. Binary logistic regression has one logit,
  log(p₁/p₀); for a prediction of the first class its sign is flipped, so a
  positive contribution always means "toward the predicted class". When
  calibration wraps the regression, we explain the underlying linear model:
  the mean of the cross-validation folds' coefficients (the calibrated
  probability averages one monotone sigmoid of each fold's logit, so which way
  and how strongly a feature pushes is the folds' linear models'; the sizes
  are in their logit units, not the calibrated probability's).
- **replacement** (any other model: a model-agnostic local method). Each
  feature in turn is replaced by a baseline value and the change in the
  predicted class's log-odds, log(p/(1 − p)), is that feature's contribution:
  log-odds(item) − log-odds(item with the feature at its baseline). The
  baseline is the training mean of a number (read from the pipeline's fitted
  scaler when it has one, so every batch is explained against the same
  reference and an explanation can be recomputed later) and "unknown" for a
  category. Why this rather than LIME or sampled Shapley values: it is
  deterministic (auditable: the same model and item give the same numbers),
  costs one extra prediction per feature per batch, and for a plain logistic
  regression with the mean as baseline it gives exactly the linear method's
  numbers, so the two read alike. Its limits: features are replaced one at a
  time (interactions are not split), and log-odds are clipped at 1e-9 from 0
  and 1, so a model that is certain either way shows small contributions.

`explain` returns the top-k contributors of each row, largest |contribution|
first (ties: schema order), as arrays; turning them into text is the caller's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from models_app.ml.baseline import predict_proba

LINEAR = "linear"
REPLACEMENT = "replacement"
TOP_K = 5
# Probabilities are kept this far from 0 and 1 before taking log-odds (a certain model's log-odds are infinite).
_EPS = 1e-9


class ExplanationError(ValueError):
    """The model or the inputs cannot be explained (say which and why)."""


@dataclass(frozen=True)
class Explanation:
    """Top-k contributors per row. `feature_index` and `contribution` are (rows, k), largest |contribution| first.

    `contribution` is in log-odds (linear: logit) units of the row's class `class_index`; positive pushes
    toward that class. `calibrated` says the linear method explained the model under a calibration.
    """

    method: str
    features: list[str]
    class_index: np.ndarray
    feature_index: np.ndarray
    contribution: np.ndarray
    calibrated: bool = False


def explain(
    model: Any,
    frame: pd.DataFrame,
    class_names: list[str],
    *,
    predicted: np.ndarray | None = None,
    baseline: Mapping[str, Any] | None = None,
    top_k: int = TOP_K,
) -> Explanation:
    """Explain each row's prediction of `class_names[predicted[row]]` (default: its most probable class).

    `frame` has one column per model feature (baseline.frame_from_rows). `baseline` (feature → value)
    is used only by the replacement method; by default it is read from the model (see module docstring).
    """
    if top_k < 1:
        raise ExplanationError(f"top_k must be at least 1, got {top_k}")
    if predicted is None:
        predicted = predict_proba(model, frame, class_names).argmax(axis=1)
    predicted = np.asarray(predicted, dtype=np.int64)
    if predicted.shape != (len(frame),):
        raise ExplanationError(f"predicted has shape {predicted.shape}; expected one class per row ({len(frame)})")
    features = [str(c) for c in frame.columns]
    linear = _linear_parts(model, class_names)
    if linear is not None:
        contributions = _linear_contributions(linear, frame, predicted)
        method, calibrated = LINEAR, linear.calibrated
    else:
        reference = dict(baseline) if baseline is not None else model_baseline(model)
        contributions = replacement_contributions(model, frame, class_names, predicted, reference)
        method, calibrated = REPLACEMENT, False
    index, values = top_contributors(contributions, top_k)
    return Explanation(method, features, predicted, index, values, calibrated)


def top_contributors(contributions: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the indices and values of the k largest |contributions|, largest first; ties keep column order."""
    k = min(k, contributions.shape[1])
    order = np.argsort(-np.abs(contributions), axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(contributions, order, axis=1)


def linear_weights(model: Any, class_names: list[str]) -> np.ndarray | None:
    """(len(class_names), prepared columns) logit coefficients of a prepare → (calibrated) logistic regression
    pipeline, signed as the linear method reads them; None for any other model. For callers whose prepared
    matrix this module cannot group by feature itself (a TF-IDF vocabulary: models_app/ml/algorithms)."""
    linear = _linear_parts(model, class_names)
    return None if linear is None else linear.weights


@dataclass(frozen=True)
class _Linear:
    prepare: Any  # fitted ColumnTransformer
    weights: np.ndarray  # (len(class_names), prepared columns): row c is class c's logit coefficients
    calibrated: bool


def _linear_parts(model: Any, class_names: list[str]) -> _Linear | None:
    """The prepare step and per-class coefficients when `model` is prepare → (calibrated) logistic regression."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    if not isinstance(model, Pipeline) or len(model.steps) != 2:
        return None
    prepare, classify = model.steps[0][1], model.steps[1][1]
    if not isinstance(prepare, ColumnTransformer):
        return None
    if isinstance(classify, LogisticRegression):
        regressions, calibrated = [classify], False
    elif isinstance(classify, CalibratedClassifierCV) and all(
        isinstance(c.estimator, LogisticRegression) for c in classify.calibrated_classifiers_
    ):
        regressions, calibrated = [c.estimator for c in classify.calibrated_classifiers_], True
    else:
        return None
    classes = [str(c) for c in regressions[0].classes_]
    coef = np.mean([r.coef_ for r in regressions], axis=0)
    if len(classes) == 2:  # one logit, log(p₁/p₀): the first class's is its negative
        coef = np.vstack([-coef[0], coef[0]])
    weights = np.zeros((len(class_names), coef.shape[1]))
    position = {name: i for i, name in enumerate(class_names)}
    for row, name in enumerate(classes):
        weights[position[name]] = coef[row]  # a class the model never saw keeps zeros (it is never predicted)
    return _Linear(prepare, weights, calibrated)


def _column_groups(prepare: Any, features: list[str], width: int) -> np.ndarray:
    """(prepared columns,) → index of the frame feature each prepared column came from."""
    from sklearn.preprocessing import OneHotEncoder

    owner: list[int] = []
    for _name, transformer, columns in prepare.transformers_:
        if isinstance(transformer, str) and transformer == "drop":
            continue
        for position, column in enumerate(columns):
            if isinstance(transformer, OneHotEncoder):
                dropped = transformer.drop_idx_ is not None and transformer.drop_idx_[position] is not None
                outputs = len(transformer.categories_[position]) - int(dropped)
            else:
                outputs = 1
            owner.extend([features.index(str(column))] * outputs)
    if len(owner) != width:
        raise ExplanationError(f"The prepare step gives {width} columns; its transformers account for {len(owner)}.")
    return np.asarray(owner)


def _linear_contributions(linear: _Linear, frame: pd.DataFrame, predicted: np.ndarray) -> np.ndarray:
    """(rows, features): coefficient × prepared value, summed over a feature's prepared columns."""
    prepared = linear.prepare.transform(frame)
    if hasattr(prepared, "toarray"):  # a sparse one-hot block
        prepared = prepared.toarray()
    prepared = np.nan_to_num(np.asarray(prepared, dtype=np.float64))  # a missing value contributes nothing
    owner = _column_groups(linear.prepare, [str(c) for c in frame.columns], prepared.shape[1])
    per_column = prepared * linear.weights[predicted]
    # Sum a category's one-hot columns into its feature: a product with a (columns, features) 0/1 matrix.
    grouping = np.zeros((prepared.shape[1], len(frame.columns)))
    grouping[np.arange(prepared.shape[1]), owner] = 1.0
    return per_column @ grouping


def model_baseline(model: Any) -> dict[str, Any]:
    """Training means of the numeric features from the model's fitted StandardScaler; categories: unknown (None).

    Raises ExplanationError when the model carries no training statistics (pass a baseline instead).
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    steps = getattr(model, "steps", [])
    prepare = steps[0][1] if steps else None
    if not isinstance(prepare, ColumnTransformer):
        raise ExplanationError(
            f"A {type(model).__name__} has no fitted scaler to read training means from; pass a baseline."
        )
    reference: dict[str, Any] = {}
    for _name, transformer, columns in prepare.transformers_:
        if isinstance(transformer, StandardScaler) and transformer.mean_ is not None:
            reference.update({str(c): float(m) for c, m in zip(columns, transformer.mean_, strict=True)})
        elif isinstance(transformer, OneHotEncoder):
            reference.update({str(c): None for c in columns})
    return reference


def replacement_contributions(
    model: Any, frame: pd.DataFrame, class_names: list[str], predicted: np.ndarray, reference: Mapping[str, Any]
) -> np.ndarray:
    """(rows, features): log-odds of the predicted class minus the same with one feature at its baseline.

    One batched prediction per feature; a feature missing from `reference` is an error (named).
    """
    missing = [str(c) for c in frame.columns if str(c) not in reference]
    if missing:
        raise ExplanationError(f"No baseline value for feature(s) {', '.join(missing)}.")
    rows = np.arange(len(frame))
    full = _log_odds(predict_proba(model, frame, class_names)[rows, predicted])
    out = np.empty((len(frame), len(frame.columns)))
    for j, column in enumerate(frame.columns):
        replaced = frame.copy(deep=False)
        value = reference[str(column)]
        replaced[column] = pd.Series([value] * len(frame), index=frame.index, dtype=frame[column].dtype)
        out[:, j] = full - _log_odds(predict_proba(model, replaced, class_names)[rows, predicted])
    return out


def _log_odds(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.log(p) - np.log1p(-p)
