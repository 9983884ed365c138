"""Explanations for the scikit-learn families, vectorised over the batch (loops only over features or chunks).

- logistic regression: models_app/ml/explain.py's linear method as it is
  (coefficient × standardised value in the predicted class's logit).
- histogram gradient boosting: explain.py's replacement method (a feature set
  to its training mean, a category to "unknown"; the change in the predicted
  class's log-odds), computed on the prepared matrix rather than the frame:
  every replaced copy of a chunk of rows goes to the trees in one call, and a
  feature no tree splits on is skipped (its contribution is exactly 0).
  Log-odds are those of the underlying model's logits, before calibration, as
  the linear method explains the regression under a calibration. Cost: one
  ensemble evaluation per used feature per row, about 3,000 rows/s per core
  at 100 trees × 30 features (bench/training_speed.py): milliseconds for a
  review card, minutes for a million-item batch. Faster needs a path-based
  tree attribution in compiled code (TreeSHAP), which scikit-learn lacks.
- TF-IDF + logistic regression: the same linear contributions on the sparse
  prepared row: coefficient × tf-idf value per token present (and coefficient
  × standardised value per tabular feature), top-k among the row's non-zero
  entries. Names are the tokens.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from models_app.ml import explain as linear_explain
from models_app.ml.algorithms.base import Explanation
from models_app.ml.algorithms.calibration import log_odds

# Rows × replaced features sent to the trees in one call (~20 MB of float64 at 30 features).
_REPLACEMENT_BATCH = 100_000


def explain_linear(pipeline: Any, frame: pd.DataFrame, class_names: list[str], predicted: np.ndarray, k: int):
    result = linear_explain.explain(pipeline, frame, class_names, predicted=predicted, top_k=k)
    names = np.asarray(result.features, dtype=object)[result.feature_index]
    return _padded(linear_explain.LINEAR, names, result.contribution, k)


def explain_trees(
    classifier: Any, prepared: np.ndarray, names: list[str], baseline: np.ndarray, predicted_column: np.ndarray, k: int
) -> Explanation:
    """`predicted_column[i]`: row i's predicted class as a column of the classifier's logits (see model_logits)."""
    rows, width = prepared.shape
    full = _predicted_log_odds(classifier, prepared, predicted_column)
    contributions = np.zeros((rows, width))
    used = features_used(classifier, width)
    if len(used) and rows:
        chunk = max(1, _REPLACEMENT_BATCH // len(used))
        for start in range(0, rows, chunk):
            block = prepared[start : start + chunk]
            copies = np.repeat(block[None, :, :], len(used), axis=0)  # (used, chunk rows, width)
            copies[np.arange(len(used)), :, used] = baseline[used][:, None]
            flat = copies.reshape(-1, width)
            replaced = _predicted_log_odds(
                classifier, flat, np.tile(predicted_column[start : start + len(block)], len(used))
            )
            contributions[start : start + len(block), used] = (
                full[start : start + len(block), None] - replaced.reshape(len(used), len(block)).T
            )
    index, values = linear_explain.top_contributors(contributions, k)
    return _padded(linear_explain.REPLACEMENT, np.asarray(names, dtype=object)[index], values, k)


def explain_sparse_linear(prepared: Any, weights: np.ndarray, names: np.ndarray, predicted: np.ndarray, k: int):
    """Top-k non-zero coefficient × value per row of a CSR matrix.

    `weights` is (classes, columns); `predicted[i]` is row i's class as a row of `weights`.
    """
    matrix = prepared.tocsr()
    matrix.sort_indices()
    rows = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    contribution = matrix.data * weights[predicted[rows], matrix.indices]
    keep = contribution != 0
    rows, columns, contribution = rows[keep], matrix.indices[keep], contribution[keep]
    order = np.lexsort((-np.abs(contribution), rows))  # by row, then largest |contribution| (ties: column order)
    rows, columns, contribution = rows[order], columns[order], contribution[order]
    starts = np.searchsorted(rows, np.arange(matrix.shape[0]))
    rank = np.arange(len(rows)) - starts[rows]
    top = rank < k
    out_names = np.full((matrix.shape[0], k), "", dtype=object)
    out_values = np.full((matrix.shape[0], k), np.nan)
    out_names[rows[top], rank[top]] = names[columns[top]]
    out_values[rows[top], rank[top]] = contribution[top]
    return Explanation("linear-tokens", out_names, out_values)


def model_logits(classifier: Any, prepared: Any) -> np.ndarray:
    """(n, classes in classifier.classes_ order) logits: a binary model's one margin becomes [0, margin]."""
    raw = np.asarray(classifier.decision_function(prepared), dtype=np.float64)
    if raw.ndim == 1:
        return np.column_stack([np.zeros(len(raw)), raw])
    return raw


def _predicted_log_odds(classifier: Any, prepared: np.ndarray, column: np.ndarray) -> np.ndarray:
    logits = model_logits(classifier, prepared)
    if logits.shape[1] == 2:  # log-odds of class 1 is the margin; of class 0 its negative
        return np.where(column == 1, logits[:, 1], -logits[:, 1])
    return log_odds(logits)[np.arange(len(column)), column]


def features_used(classifier: Any, width: int) -> np.ndarray:
    """Prepared columns some tree splits on (all of them if the model does not say)."""
    predictors = getattr(classifier, "_predictors", None)
    if not predictors:
        return np.arange(width)
    used = {
        int(f)
        for per_iteration in predictors
        for tree in per_iteration
        for f in tree.nodes["feature_idx"][~tree.nodes["is_leaf"].astype(bool)]
    }
    return np.asarray(sorted(used), dtype=np.int64)


def _padded(method: str, names: np.ndarray, values: np.ndarray, k: int) -> Explanation:
    """Exactly k columns: names "" and values NaN past the model's last feature."""
    rows, have = names.shape
    if have >= k:
        return Explanation(method, names.astype(object), values.astype(np.float64))
    out_names = np.full((rows, k), "", dtype=object)
    out_values = np.full((rows, k), np.nan)
    out_names[:, :have] = names
    out_values[:, :have] = values
    return Explanation(method, out_names, out_values)
