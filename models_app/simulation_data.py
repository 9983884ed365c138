"""Sources for the loop simulation (models_app/simulation.py): a public dataset split three ways.

Each seed gets its own split of the same source: a small labelled seed set
(stratified, `per_class` rows of each class, so the first model can train), a
sequestered holdout (labelled, for the curve), and a review pool whose labels
are held back as the oracle's answers. Pure data preparation: no database.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import pandas as pd

from annotations import demo_data

SOURCES = ("breast_cancer", "digits")
HOLDOUT_FRACTION = 0.3
# Seed rows per class: the demo's 24 labelled rows for breast cancer; two per class for digits, the least
# a class needs to train (models_app/ml/algorithms/checks.py), so the cold start is as cold as it gets.
DEFAULT_PER_CLASS = {"breast_cancer": 12, "digits": 2}
_DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


@dataclass(frozen=True)
class FeatureColumn:
    name: str
    dtype: str  # a Feature.Dtype value
    unit: str
    normal_min: float | None
    normal_max: float | None
    description: str


@dataclass(frozen=True)
class SourceData:
    """One source, whole: the frame has `external_id`, the feature columns and `label`."""

    frame: pd.DataFrame
    features: list[FeatureColumn]
    classes: list[str]
    description: str


@dataclass(frozen=True)
class SourceSplit:
    """The three files to import, and the oracle: external id → true label of every pool row."""

    seed_csv: bytes
    holdout_csv: bytes
    pool_csv: bytes
    oracle: dict[str, str]
    seed_rows: int
    holdout_rows: int


def source_load(source: str) -> SourceData:
    """The named source; ValueError naming the choices for an unknown one."""
    if source == "breast_cancer":
        frame, features, classes = demo_data.load()
        columns = [FeatureColumn(f.name, "float", f.unit, f.normal_min, f.normal_max, f.description) for f in features]
        return SourceData(frame, columns, classes, "Wisconsin breast-cancer diagnostic data (scikit-learn)")
    if source == "digits":
        return _digits()
    raise ValueError(f"Unknown source {source!r}; choose one of {', '.join(SOURCES)}.")


def _digits() -> SourceData:
    from sklearn.datasets import load_digits

    data = load_digits()
    names = [f"pixel_{row}_{col}" for row in range(8) for col in range(8)]
    frame = pd.DataFrame(data.data.astype(int), columns=names)
    frame.insert(0, "external_id", [f"digit-{i + 1:04d}" for i in range(len(frame))])
    frame["label"] = [_DIGIT_NAMES[t] for t in data.target]
    features = [
        FeatureColumn(
            name,
            "integer",
            "grey level",
            0.0,
            16.0,
            f"Ink in the 4×4 block at row {name.split('_')[1]}, column {name.split('_')[2]} of the 8×8 image (0–16).",
        )
        for name in names
    ]
    return SourceData(frame, features, list(_DIGIT_NAMES), "Handwritten digits, 8×8 images (scikit-learn)")


def source_split(data: SourceData, *, seed: int, per_class: int) -> SourceSplit:
    """Split `data` for one seed. ValueError when a class has too few rows outside the holdout for `per_class`."""
    frame = data.frame
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(frame))
    n_holdout = int(round(len(frame) * HOLDOUT_FRACTION))
    holdout = frame.iloc[np.sort(order[:n_holdout])]
    rest = frame.iloc[order[n_holdout:]]  # in the permuted order, so the seed rows differ between seeds
    seed_index = []
    for name in data.classes:
        of_class = rest.index[rest["label"] == name]
        if len(of_class) < per_class + 1:
            raise ValueError(
                f"Class {name!r} has {len(of_class)} rows outside the holdout; {per_class} seed rows per class "
                "and at least one pool row are needed."
            )
        seed_index.extend(of_class[:per_class])
    seed_rows = frame.loc[sorted(seed_index)]
    pool = frame.loc[sorted(set(rest.index) - set(seed_index))]
    oracle = dict(zip(pool["external_id"], pool["label"], strict=True))
    return SourceSplit(
        seed_csv=_csv(seed_rows),
        holdout_csv=_csv(holdout),
        pool_csv=_csv(pool.drop(columns=["label"])),
        oracle=oracle,
        seed_rows=len(seed_rows),
        holdout_rows=len(holdout),
    )


def _csv(frame: pd.DataFrame) -> bytes:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, float_format="%.6g")
    return buffer.getvalue().encode("utf-8")
