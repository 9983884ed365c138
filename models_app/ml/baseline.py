"""The baseline classifier: scaled logistic regression with calibrated probabilities.

Numeric and yes/no features are standardised; category features are one-hot
encoded. Probabilities are calibrated (sigmoid, cross-validated) when every
class has enough examples, so "confidence" means what a reviewer reads it as.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

ALGORITHM = "logistic-regression+sigmoid-calibration (scikit-learn)"


@dataclass(frozen=True)
class FeatureSpec:
    name: str
    dtype: str  # "float" | "integer" | "boolean" | "category" | "text" (build_pipeline only)
    categories: tuple[str, ...] = ()


class TrainingDataError(ValueError):
    """The labelled data cannot train a model (too few rows or classes)."""


def frame_from_rows(rows: list[dict[str, Any]], features: list[FeatureSpec]) -> pd.DataFrame:
    """One column per feature, typed, in `features` order; a key missing from a row is NaN.

    Built column-wise by pandas (its dict-of-records reader is compiled), then
    each column cast once: no Python loop per row and feature.
    """
    names = [spec.name for spec in features]
    frame = pd.DataFrame.from_records(rows, columns=names) if rows else pd.DataFrame(columns=names)
    for spec in features:
        if spec.dtype == "category":
            frame[spec.name] = frame[spec.name].astype("object")
        else:
            frame[spec.name] = pd.to_numeric(frame[spec.name], errors="coerce").astype("float64")
    return frame


def build_pipeline(features: list[FeatureSpec], min_class_count: int, seed: int = 0) -> Any:
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = [f.name for f in features if f.dtype not in ("category", "text")]
    categorical = [f.name for f in features if f.dtype == "category"]
    transformers: list[tuple[str, Any, Any]] = []
    if numeric:
        transformers.append(("numeric", StandardScaler(), numeric))
    if categorical:
        cats = [list(f.categories) for f in features if f.dtype == "category"]
        transformers.append(("category", OneHotEncoder(categories=cats, handle_unknown="ignore"), categorical))
    # Free text (label-issue scoring reads it; the baseline's own callers pass no text): TF-IDF of words and
    # word pairs per column, named by a scalar so the vectoriser gets the column's strings. Empty, not
    # missing: the caller fills missing text with "".
    if any(f.dtype == "text" for f in features):
        from sklearn.feature_extraction.text import TfidfVectorizer

        for f in features:
            if f.dtype == "text":
                vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, max_features=50_000)
                transformers.append((f"text:{f.name}", vectorizer, f.name))
    logistic = LogisticRegression(max_iter=2000, C=1.0, random_state=seed)
    # Calibration needs at least two examples of every class in each fold.
    folds = min(5, min_class_count)
    classifier: Any = CalibratedClassifierCV(logistic, method="sigmoid", cv=folds) if folds >= 2 else logistic
    return Pipeline([("prepare", ColumnTransformer(transformers)), ("classify", classifier)])


def train(
    frame: pd.DataFrame, labels: list[str], features: list[FeatureSpec], class_names: list[str], seed: int = 0
) -> Any:
    """Fit the baseline. Raises TrainingDataError when the labels cannot train a model."""
    if len(labels) != len(frame):
        raise TrainingDataError("labels and rows differ in length")
    present = sorted(set(labels))
    if len(present) < 2:
        raise TrainingDataError(
            "Training needs at least two classes among the gold labels; "
            f"found {len(present)} ({', '.join(present) or 'none'})."
        )
    unknown = set(present) - set(class_names)
    if unknown:
        raise TrainingDataError(f"Labels not in the schema: {', '.join(sorted(unknown))}.")
    counts = pd.Series(labels).value_counts()
    model = build_pipeline(features, int(counts.min()), seed=seed)
    model.fit(frame, np.asarray(labels))
    return model


def predict_proba(model: Any, frame: pd.DataFrame, class_names: list[str]) -> np.ndarray:
    """Probabilities in `class_names` order (classes the model never saw get 0)."""
    raw = model.predict_proba(frame)
    out = np.zeros((len(frame), len(class_names)))
    index = {name: i for i, name in enumerate(class_names)}
    for column, name in enumerate(model.classes_):
        out[:, index[str(name)]] = raw[:, column]
    return out
