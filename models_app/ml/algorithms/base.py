"""The one small interface every model family implements (issue 9): arrays in, arrays out, no Django.

A dataset's retraining policy names an algorithm (a key of `algorithms.REGISTRY`)
and its hyperparameters; the training run calls

    algorithm = algorithm_get(name)
    params = algorithm.validate_params(raw)          # types and ranges, or HyperparameterError
    fitted = algorithm.fit(frame, labels, spec=spec, params=params, seed=seed, progress=cb)
    proba = fitted.predict_proba(frame)               # (n, len(spec.class_names)), rows sum to 1
    explanation = fitted.explain(frame, top_k=5)      # per-row top contributors (numbers or tokens)
    sha256 = fitted.save(path)                        # one file, safe formats only: skops or safetensors
    again = algorithm.load(path, sha256, spec=spec)   # hash checked before anything is parsed

Why an interface and not scikit-learn's estimator API alone: torch models,
calibration chosen by cross-validation, explanations and safe artifacts all have
to look the same to the training run, the prediction batch and the review card,
and none of that is part of `BaseEstimator`.

Rules every implementation keeps (tests in tests/models_app/ml/ hold them):
- deterministic: the same frame (in canonical order, see `canonical_order`),
  labels, params and seed give the same probabilities, bit for bit on CPU;
- `predict_proba` columns follow `spec.class_names`; a class absent from
  training gets probability 0 (and `FitInfo.warnings` says so);
- nothing is ever unpickled: scikit-learn models go through skops with an
  allow-list, torch weights through safetensors (the model's configuration
  and vocabulary as JSON in the file's own metadata header), one file each;
- torch is imported inside the torch implementations only, so the web process
  never pays for it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd


class TrainingDataError(ValueError):
    """The labelled data cannot train this model (too few rows, classes or examples of a class); say which."""


class HyperparameterError(ValueError):
    """A hyperparameter is unknown, of the wrong type or out of its range; the message names it."""


@dataclass(frozen=True)
class FeatureSpec:
    name: str
    dtype: str  # "float" | "integer" | "boolean" | "category" | "text"
    categories: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModelSpec:
    """What the model is asked to learn: its inputs and the label classes, in schema order."""

    features: tuple[FeatureSpec, ...]
    class_names: tuple[str, ...]


@dataclass(frozen=True)
class Hyperparameter:
    """One declared hyperparameter: the policy form and API validate against this."""

    name: str
    kind: str  # "int" | "float" | "bool" | "choice"
    default: Any
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    help: str = ""


@dataclass
class FitInfo:
    """What the fit did, stored on the model version (reproducibility and honesty)."""

    algorithm: str
    params: dict[str, Any]
    seed: int
    calibration: str = "none"  # "none" | "sigmoid" | "isotonic" | "temperature"
    calibration_reason: str = ""
    library_versions: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    epochs_run: int | None = None
    warm_started_from: str | None = None  # sha256 of the champion artifact a fine-tune started from


@dataclass(frozen=True)
class Explanation:
    """Per-row top contributors, largest |contribution| first.

    `names[i, j]` is a feature name (tabular) or a token (text); `values[i, j]`
    its signed contribution toward the predicted class (NaN past the last one).
    `method` says how they were computed, for the card's small print.
    """

    method: str
    names: np.ndarray  # (n, k) of str (object)
    values: np.ndarray  # (n, k) of float


# progress(fraction in [0, 1], stage text, epoch or None); may raise to cancel the fit.
ProgressCallback = Callable[[float, str, int | None], None]


class FittedModel(Protocol):
    spec: ModelSpec
    info: FitInfo

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray: ...

    def explain(self, frame: pd.DataFrame, *, top_k: int = 5) -> Explanation: ...

    def save(self, path: Path) -> str:
        """Write the artifact to `path` atomically (parent created) and return the file's sha256."""
        ...


def predict_and_explain(model: FittedModel, frame: pd.DataFrame, *, top_k: int = 5) -> tuple[np.ndarray, Explanation]:
    """Probabilities and explanations of the same rows: in one pass over the inputs where the family offers it
    (`predict_proba_and_explain`), else the two calls. Equal to the two calls either way."""
    both = getattr(model, "predict_proba_and_explain", None)
    if both is not None:
        return both(frame, top_k=top_k)
    return model.predict_proba(frame), model.explain(frame, top_k=top_k)


class Algorithm(Protocol):
    name: str  # the registry key, stored on the model version
    label: str  # for people: "Logistic regression (scikit-learn)"
    handles_text: bool
    hyperparameters: tuple[Hyperparameter, ...]

    def validate_params(self, raw: Mapping[str, Any]) -> dict[str, Any]: ...

    def fit(
        self,
        frame: pd.DataFrame,
        labels: np.ndarray,
        *,
        spec: ModelSpec,
        params: Mapping[str, Any],
        seed: int,
        progress: ProgressCallback | None = None,
        warm_start: FittedModel | None = None,
    ) -> FittedModel: ...

    def load(self, path: Path, expected_sha256: str, *, spec: ModelSpec) -> FittedModel:
        """Refuse (ArtifactIntegrityError) before parsing anything when the file's sha256 differs."""
        ...


def params_validate(declared: tuple[Hyperparameter, ...], raw: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults filled in, every value type- and range-checked; unknown names refused."""
    known = {h.name: h for h in declared}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise HyperparameterError(f"Unknown hyperparameter(s): {', '.join(unknown)}; known: {', '.join(known)}.")
    out: dict[str, Any] = {}
    for h in declared:
        value = raw.get(h.name, h.default)
        if h.kind == "bool":
            if not isinstance(value, bool):
                raise HyperparameterError(f"{h.name} must be true or false, not {value!r}.")
        elif h.kind == "choice":
            if value not in h.choices:
                raise HyperparameterError(f"{h.name} must be one of {', '.join(h.choices)}, not {value!r}.")
        else:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise HyperparameterError(f"{h.name} must be a number, not {value!r}.")
            if h.kind == "int":
                if float(value) != int(value):
                    raise HyperparameterError(f"{h.name} must be a whole number, not {value!r}.")
                value = int(value)
            else:
                value = float(value)
            if (h.minimum is not None and value < h.minimum) or (h.maximum is not None and value > h.maximum):
                raise HyperparameterError(f"{h.name} must be between {h.minimum} and {h.maximum}, not {value!r}.")
        out[h.name] = value
    return out


def canonical_order(row_hashes: list[str] | np.ndarray) -> np.ndarray:
    """The positions of rows sorted by content hash: training never depends on the order rows were read in."""
    return np.argsort(np.asarray(row_hashes, dtype=object), kind="stable")


def row_content_hashes(frame: pd.DataFrame, labels: np.ndarray) -> list[str]:
    """sha256 of each row's feature values and label (a stable byte form), for `canonical_order`.

    Numeric and yes/no columns are hashed as their float64 bytes (−0.0 as 0.0, every NaN as one
    NaN), so no number is formatted as text: at 100k rows × 30 numbers that formatting took ~4 s
    of a fit that should take a few. Other columns (categories, text) as text, missing spelt out.
    """
    numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c].dtype)]
    others = [c for c in frame.columns if c not in set(numeric)]
    blobs: np.ndarray | None = None
    if numeric:
        values = frame[numeric].to_numpy(dtype=np.float64, na_value=np.nan) + 0.0  # -0.0 + 0.0 is 0.0
        values[np.isnan(values)] = np.nan  # one NaN bit pattern
        blobs = np.ascontiguousarray(values).view(np.dtype((np.void, 8 * len(numeric)))).ravel()
    # Not astype(str): pandas 3 keeps a missing value as NaN there, which join refuses; spell it out
    # (None and NaN alike, as the same absent value) with a character no imported value contains.
    columns = [frame[c].astype(object).where(frame[c].notna(), "\x00").map(str).to_numpy() for c in others]
    label_text = [str(label) for label in labels]
    out = []
    for i in range(len(frame)):
        digest = hashlib.sha256(blobs[i].tobytes() if blobs is not None else b"")
        digest.update(("\x1f".join(column[i] for column in columns) + "\x1e" + label_text[i]).encode())
        out.append(digest.hexdigest())
    return out


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
