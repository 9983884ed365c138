"""The demo dataset: Wisconsin breast-cancer diagnostic data, shipped with scikit-learn.

Pure data preparation (no database): the schema, and three CSV files: a small
labelled seed set, a sequestered holdout, and an unlabelled review pool.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import pandas as pd

DATASET_NAME = "Breast cancer (Wisconsin diagnostic)"
DATASET_SLUG = "breast-cancer-wdbc"
SEED = 20261127
SEED_LABELLED = 24  # small on purpose: the first model should make visible mistakes
HOLDOUT_FRACTION = 0.3

_BASE = {
    "radius": ("", "Mean of distances from the centre to points on the perimeter (unit not stated by the source)."),
    "texture": ("grey levels", "Standard deviation of grey-scale values."),
    "perimeter": ("", "Perimeter of the nucleus (unit not stated by the source)."),
    "area": ("", "Area of the nucleus (unit not stated by the source)."),
    "smoothness": ("", "Local variation in radius lengths."),
    "compactness": ("dimensionless", "perimeter² / area − 1.0."),
    "concavity": ("", "Severity of concave portions of the contour."),
    "concave points": ("", "Number of concave portions of the contour."),
    "symmetry": ("", "Symmetry of the nucleus."),
    "fractal dimension": ("dimensionless", "“Coastline approximation” − 1."),
}
_STAT = {
    "mean": "mean over the nuclei in the image",
    "error": "standard error over the nuclei in the image",
    "worst": "“worst”: mean of the three largest values in the image",
}


@dataclass(frozen=True)
class FeatureDef:
    name: str
    unit: str
    description: str
    normal_min: float
    normal_max: float


def _split_name(raw: str) -> tuple[str, str]:
    if raw.startswith("mean "):
        return raw[5:], "mean"
    if raw.startswith("worst "):
        return raw[6:], "worst"
    return raw[: -len(" error")], "error"


def load() -> tuple[pd.DataFrame, list[FeatureDef], list[str]]:
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    names = [str(n) for n in data.feature_names]
    columns = [n.replace(" ", "_") for n in names]
    frame = pd.DataFrame(data.data, columns=columns)
    frame.insert(0, "external_id", [f"wdbc-{i + 1:04d}" for i in range(len(frame))])
    frame["label"] = [str(data.target_names[t]) for t in data.target]
    benign = frame[frame["label"] == "benign"]
    features = []
    for raw, column in zip(names, columns, strict=True):
        base, stat = _split_name(raw)
        unit, meaning = _BASE[base]
        low, high = np.percentile(benign[column], [2.5, 97.5])
        features.append(
            FeatureDef(
                name=column,
                unit=unit,
                description=(
                    f"{meaning} Statistic: {_STAT[stat]}. Normal range: central 95% of benign cases in this data."
                ),
                normal_min=float(f"{low:.4g}"),
                normal_max=float(f"{high:.4g}"),
            )
        )
    return frame, features, ["malignant", "benign"]


def split_csvs(frame: pd.DataFrame) -> dict[str, bytes]:
    """Three files: labelled seed, labelled holdout, unlabelled review pool."""
    rng = np.random.default_rng(SEED)
    order = rng.permutation(len(frame))
    n_holdout = int(round(len(frame) * HOLDOUT_FRACTION))
    holdout = frame.iloc[np.sort(order[:n_holdout])]
    rest = order[n_holdout:]
    # A stratified seed: half of each class, so both are present.
    rest_frame = frame.iloc[rest]
    seed_ids = pd.concat(
        [rest_frame[rest_frame["label"] == name].head(SEED_LABELLED // 2) for name in ("malignant", "benign")]
    ).index
    seed = frame.loc[sorted(seed_ids)]
    pool = frame.loc[sorted(set(rest_frame.index) - set(seed_ids))].drop(columns=["label"])

    def csv(df: pd.DataFrame) -> bytes:
        buffer = io.StringIO()
        df.to_csv(buffer, index=False, float_format="%.6g")
        return buffer.getvalue().encode("utf-8")

    return {"wdbc-seed-labelled.csv": csv(seed), "wdbc-holdout.csv": csv(holdout), "wdbc-review-pool.csv": csv(pool)}
