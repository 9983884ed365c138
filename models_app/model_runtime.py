"""A registered model version, loaded and ready to predict and explain, whatever its family (issue 9).

Two kinds of artifact are in the registry:

- versions trained through `models_app.ml.algorithms` (their `algorithm` is a
  registry name): loaded by their family after the sha256 check, asked for
  probabilities and for an explanation through the one interface;
- versions trained before the families existed (their `algorithm` is the old
  free-text label, a scikit-learn pipeline in a skops file): loaded as before
  and explained by models_app/ml/explain.py, so a champion from last month
  keeps predicting, explaining and being compared after an upgrade.

Whatever the family, probabilities come back in the order of the class names
the caller asks for (a class the version never knew gets 0), and the card's
explanation JSON has one shape (models_app/explanations.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pandas as pd
from django.conf import settings

from annotations.models import Dataset, Feature
from models_app.explanations import explanations_json as legacy_explanations_json
from models_app.ml.algorithms import REGISTRY, algorithm_get
from models_app.ml.algorithms.base import FeatureSpec, ModelSpec, predict_and_explain
from models_app.ml.artifacts import load_model
from models_app.ml.baseline import predict_proba as legacy_predict_proba
from models_app.models import ModelVersion

logger = logging.getLogger(__name__)
TOP_K = 5


def artifact_path(model_version: ModelVersion) -> Path:
    return Path(settings.ARTIFACT_ROOT) / model_version.artifact_path


def model_spec(dataset: Dataset, *, with_text: bool) -> ModelSpec:
    """The dataset's model inputs in schema order (text only for a family that reads text) and its classes."""
    features = dataset.features.order_by("position")
    if not with_text:
        features = features.exclude(dtype=Feature.Dtype.TEXT)
    return ModelSpec(
        features=tuple(FeatureSpec(f.name, f.dtype, tuple(f.categories or ())) for f in features),
        class_names=tuple(dataset.label_classes.order_by("position").values_list("name", flat=True)),
    )


def version_spec(model_version: ModelVersion) -> ModelSpec:
    """The inputs and classes a version was trained on (its own record, not today's schema)."""
    by_name = {f.name: f for f in Feature.objects.filter(dataset_id=model_version.dataset_id)}
    features = []
    for name in model_version.feature_names:
        feature = by_name.get(name)
        dtype = feature.dtype if feature else "float"
        features.append(FeatureSpec(name, dtype, tuple(feature.categories or ()) if feature else ()))
    return ModelSpec(features=tuple(features), class_names=tuple(model_version.class_names))


@dataclass
class LoadedModel:
    """One loaded version: `predict_proba` and `explanations_json`, with `spec` naming its inputs."""

    version: ModelVersion
    spec: ModelSpec
    fitted: Any
    legacy: bool

    def predict_proba(self, frame: pd.DataFrame, class_names: list[str]) -> np.ndarray:
        """(rows, len(class_names)) probabilities; `frame` has one column per `self.spec` feature."""
        if self.legacy:
            return legacy_predict_proba(self.fitted, frame, class_names)
        return self._in_order(self.fitted.predict_proba(frame), class_names)

    def predict_with_explanations(
        self, frame: pd.DataFrame, class_names: list[str]
    ) -> tuple[np.ndarray, list[str | None]]:
        """predict_proba and explanations_json for the most probable class, the inputs read once where the
        family can (base.predict_and_explain); the same results as the two calls."""
        if self.legacy:
            proba = self.predict_proba(frame, class_names)
            return proba, self.explanations_json(frame, class_names, proba.argmax(axis=1))
        try:
            raw, explanation = predict_and_explain(self.fitted, frame, top_k=TOP_K)
        except Exception:  # the explanation failed: the probabilities alone, and explanations_json logs why
            proba = self.predict_proba(frame, class_names)
            return proba, self.explanations_json(frame, class_names, proba.argmax(axis=1))
        proba = self._in_order(raw, class_names)
        best = proba.argmax(axis=1)
        return proba, _explanations_json(explanation, frame, self.spec, class_names, best, self.fitted.info.calibration)

    def _in_order(self, raw: np.ndarray, class_names: list[str]) -> np.ndarray:
        if list(self.spec.class_names) == list(class_names):
            return raw
        out = np.zeros((len(raw), len(class_names)))
        index = {name: i for i, name in enumerate(class_names)}
        for column, name in enumerate(self.spec.class_names):
            if name in index:
                out[:, index[name]] = raw[:, column]
        return out

    def explanations_json(self, frame: pd.DataFrame, class_names: list[str], best: np.ndarray) -> list[str | None]:
        """One JSON text per row explaining `class_names[best[row]]` for the card, or None (logged) when
        the model cannot be explained: an explanation is never made up."""
        if self.legacy:
            return legacy_explanations_json(self.fitted, frame, list(self.spec.features), class_names, best)
        try:
            explanation = self.fitted.explain(frame, top_k=TOP_K)
        except Exception:
            logger.warning("No explanation for model v%s's predictions.", self.version.version, exc_info=True)
            return [None] * len(frame)
        return _explanations_json(explanation, frame, self.spec, class_names, best, self.fitted.info.calibration)


def model_load(model_version: ModelVersion) -> LoadedModel:
    """Load the artifact after checking its sha256 against the registry (ArtifactIntegrityError if not)."""
    path = artifact_path(model_version)
    if model_version.algorithm in REGISTRY:
        spec = version_spec(model_version)
        fitted = algorithm_get(model_version.algorithm).load(path, model_version.artifact_sha256, spec=spec)
        return LoadedModel(model_version, spec, fitted, legacy=False)
    spec = version_spec(model_version)
    return LoadedModel(model_version, spec, load_model(path, model_version.artifact_sha256), legacy=True)


def _explanations_json(
    explanation: Any, frame: pd.DataFrame, spec: ModelSpec, class_names: list[str], best: np.ndarray, calibration: str
) -> list[str | None]:
    """The card's JSON (see annotations/templatetags/loupe_explanation.py) from an interface Explanation.

    A contributor named after a feature is shown with the item's value; any other name is a token of a
    text feature (value null). Rows are few thousand per chunk and k is 5: a Python loop here is cheap
    next to the model, and it keeps the tokens' JSON escaping exact.
    """
    features = {f.name: i for i, f in enumerate(spec.features)}
    columns = [frame.iloc[:, i].to_numpy() for i in range(len(spec.features))]
    tokens = explanation.method in ("occlusion", "tfidf", "tokens") or not all(
        str(name) in features or name == "" for name in np.ravel(explanation.names)
    )
    out: list[str | None] = []
    for row in range(len(frame)):
        name = class_names[int(best[row])]
        others = [other for other in class_names if other != name]
        contributors = []
        for feature, value in zip(explanation.names[row], explanation.values[row], strict=True):
            if feature == "" or not np.isfinite(value):
                continue
            shown: Any = None
            if str(feature) in features:
                shown = _json_value(columns[features[str(feature)]][row], spec.features[features[str(feature)]].dtype)
            rounded = round(float(value), 4) + 0.0
            direction = "toward" if rounded > 0 else "away" if rounded < 0 else "none"
            contributors.append([str(feature), shown, rounded, direction])
        header = {
            "method": explanation.method,
            "kind": "tokens" if tokens else "features",
            "calibrated": calibration != "none",
            "class": name,
            "toward": f"pushes toward {name}",
            "away": f"pushes toward {others[0]}" if len(others) == 1 else f"pushes away from {name}",
            "contributors": contributors,
        }
        out.append(_encode(header).decode() if contributors else None)
    return out


# msgspec, not json.dumps: 0.5 against 3.6 µs a row (a tenth of the chunk's Python time). The text differs
# (compact, UTF-8), the JSON does not: PostgreSQL stores it as jsonb and SQLite's JSONField parses it.
_encode = msgspec.json.Encoder().encode


def _json_value(value: Any, dtype: str) -> Any:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return None
    if dtype == "boolean":
        return bool(value)
    if dtype == "integer" and float(value) == int(value):
        return int(value)
    if dtype in ("category", "text"):
        return str(value)
    return float(value)
