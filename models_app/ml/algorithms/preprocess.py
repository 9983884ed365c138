"""Inputs → what the scikit-learn families fit on: one place for tabular and text preparation.

`frame_prepare` puts a caller's frame into the schema's shape (columns in spec
order, numbers as float64, categories as text, missing text as ""), so every
family, the canonical row order and the artifact see the same values.

Two prepare steps (fitted scikit-learn ColumnTransformers, saved inside the
model's skops file):

- linear (logistic regression, and TF-IDF + logistic regression): numbers
  mean-imputed then standardised, categories one-hot over the schema's
  categories (an unseen one is all zeros: it contributes nothing), each text
  feature its own TF-IDF vocabulary. The layout is the one
  models_app/ml/explain.py reads for its linear method.
- trees (histogram gradient boosting): numbers as they are (the trees handle
  missing values themselves), categories as ordinal codes the model treats as
  categorical (unknown and missing: NaN, the "missing" branch).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from models_app.ml.algorithms.base import FeatureSpec, ModelSpec

NUMERIC = ("float", "integer", "boolean")
CATEGORY = "category"
TEXT = "text"
# Histogram gradient boosting treats at most this many categories of a feature natively.
MAX_NATIVE_CATEGORIES = 255


class InputError(ValueError):
    """A frame does not fit the model's schema (a missing column, a non-numeric value); says which."""


def frame_prepare(frame: pd.DataFrame, spec: ModelSpec) -> pd.DataFrame:
    """The spec's features, in order and typed: float64 numbers, object categories (NaN when missing), str text."""
    missing = [f.name for f in spec.features if f.name not in frame.columns]
    if missing:
        raise InputError(f"The frame lacks the feature column(s) {', '.join(missing)}.")
    # Plain arrays, not Series: a Series keeps the caller's index and would misalign with the new one.
    columns: dict[str, np.ndarray] = {}
    for feature in spec.features:
        column = frame[feature.name]
        if feature.dtype == TEXT:
            columns[feature.name] = _text(column, missing="")
        elif feature.dtype == CATEGORY:
            columns[feature.name] = _text(column, missing=np.nan)
        elif feature.dtype in NUMERIC:
            columns[feature.name] = _numeric(column, feature.name)
        else:
            raise InputError(f"Feature {feature.name!r} has an unknown type {feature.dtype!r}.")
    return pd.DataFrame(columns, index=pd.RangeIndex(len(frame)))


def _text(column: pd.Series, *, missing: Any) -> np.ndarray:
    """Values as str (numpy's conversion, not a Python call per row), missing ones as `missing`."""
    values = column.to_numpy(dtype=object)
    present = pd.notna(values)
    out = np.full(len(values), missing, dtype=object)
    out[present] = values[present].astype(str)
    return out


def _numeric(column: pd.Series, name: str) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(column.dtype):
        return column.to_numpy(dtype=np.float64, na_value=np.nan)
    converted = pd.to_numeric(column, errors="coerce")
    bad = converted.isna() & column.notna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(f"Feature {name!r} must be a number; row {row} holds {column.iloc[row]!r}.")
    return converted.to_numpy(dtype=np.float64, na_value=np.nan)


def features_of(spec: ModelSpec, *dtypes: str) -> list[FeatureSpec]:
    return [f for f in spec.features if f.dtype in dtypes]


def linear_prepare(spec: ModelSpec, *, text: dict[str, Any] | None = None) -> Any:
    """The linear families' prepare step; `text` (TfidfVectorizer keyword arguments) adds one per text feature."""
    from sklearn.compose import ColumnTransformer
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = [f.name for f in features_of(spec, *NUMERIC)]
    categorical = features_of(spec, CATEGORY)
    transformers: list[tuple[str, Any, Any]] = []
    if numeric:
        # keep_empty_features: a column with no values in training stays (imputed 0), so the layout is the schema's.
        scale = Pipeline(
            [("impute", SimpleImputer(strategy="mean", keep_empty_features=True)), ("scale", StandardScaler())]
        )
        transformers.append(("numeric", scale, numeric))
    if categorical:
        categories: Any = (
            [list(f.categories) for f in categorical] if all(f.categories for f in categorical) else "auto"
        )
        transformers.append(
            ("category", OneHotEncoder(categories=categories, handle_unknown="ignore"), [f.name for f in categorical])
        )
    if text is not None:
        for feature in features_of(spec, TEXT):
            # A column name (not a list): the vectorizer receives one string per row.
            transformers.append((f"text:{feature.name}", TfidfVectorizer(**text), feature.name))
    # TF-IDF output stays sparse whatever the share of dense numeric columns.
    return ColumnTransformer(transformers, sparse_threshold=1.0 if text is not None else 0.3)


def prepared_names(prepare: Any) -> np.ndarray:
    """(prepared columns,) of str: the feature each column came from; a token (prefixed by its feature when
    there are several text features) for a TF-IDF column."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.preprocessing import OneHotEncoder

    text_count = sum(isinstance(t, TfidfVectorizer) for _n, t, _c in prepare.transformers_)
    names: list[str] = []
    for _name, transformer, columns in prepare.transformers_:
        if isinstance(transformer, str) and transformer == "drop":
            continue
        if isinstance(transformer, TfidfVectorizer):
            tokens = [str(t) for t in transformer.get_feature_names_out()]
            names.extend(tokens if text_count == 1 else [f"{columns}: {t}" for t in tokens])
        elif isinstance(transformer, OneHotEncoder):
            for position, column in enumerate(columns):
                names.extend([str(column)] * len(transformer.categories_[position]))
        else:
            names.extend(str(c) for c in columns)
    return np.asarray(names, dtype=object)


def trees_prepare(spec: ModelSpec) -> tuple[Any, list[str], list[bool]]:
    """The trees' prepare step, the prepared column order (feature names) and which columns are categorical."""
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OrdinalEncoder

    numeric = [f.name for f in features_of(spec, *NUMERIC)]
    categorical = features_of(spec, CATEGORY)
    transformers: list[tuple[str, Any, list[str]]] = []
    if numeric:
        transformers.append(("numeric", "passthrough", numeric))
    if categorical:
        categories: Any = (
            [list(f.categories) for f in categorical] if all(f.categories for f in categorical) else "auto"
        )
        encoder = OrdinalEncoder(
            categories=categories, handle_unknown="use_encoded_value", unknown_value=np.nan, dtype=np.float64
        )
        transformers.append(("category", encoder, [f.name for f in categorical]))
    order = numeric + [f.name for f in categorical]
    # A feature with more categories than the trees can bin natively is used as its ordinal code.
    native = [False] * len(numeric) + [
        not f.categories or len(f.categories) <= MAX_NATIVE_CATEGORIES for f in categorical
    ]
    return ColumnTransformer(transformers), order, native
