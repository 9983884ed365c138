"""Which gold labels are likeliest wrong: confident learning on out-of-fold probabilities.

Each labelled row gets a probability for every class from a model that never
saw that row: the dataset's own pipeline (baseline.build_pipeline) fitted by
stratified k-fold cross-validation (`cross_val_predict`), so a row's own,
possibly wrong, label cannot vouch for itself. cleanlab (Apache-2.0 from 2.8
on) then turns those probabilities into

- a label quality score per row in [0, 1] (`cleanlab.rank.get_label_quality_scores`,
  self-confidence: the out-of-fold probability of the row's given label), lower
  meaning likelier wrong; and
- an issue flag per row (`cleanlab.filter.find_label_issues`, pruning by the
  estimated noise rates of the confident joint), for how many look wrong at all.

Only the classes that occur among the labels take part: a class with no label
has no examples for a fold to learn, and cleanlab expects every column to be a
class that occurs. A class with fewer rows than folds is refused, not quietly
folded into fewer folds, so the numbers always mean the same procedure.

Pure: arrays and DataFrames in, arrays out. scikit-learn and cleanlab are
imported inside the functions (the web process never loads them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from models_app.ml.baseline import FeatureSpec, TrainingDataError, build_pipeline

DEFAULT_FOLDS = 5
METHOD = "cleanlab self_confidence label quality; find_label_issues prune_by_noise_rate; out-of-fold probabilities"


class LabelIssueDataError(TrainingDataError):
    """The labels cannot be scored (too few rows of a class for the folds, one class only, unknown labels)."""


@dataclass(frozen=True)
class LabelIssueScores:
    """Per labelled row, in the input order."""

    quality: np.ndarray  # label quality in [0, 1]; lower = likelier a label error
    is_issue: np.ndarray  # bool: cleanlab flags the label as a likely error
    probabilities: np.ndarray  # (rows, classes) out-of-fold probabilities, columns in `classes` order
    classes: list[str]  # the classes that took part, in the schema's order
    folds: int

    def worst_first(self) -> np.ndarray:
        """Row positions, likeliest label error first (ties by position, so the order is reproducible)."""
        return np.lexsort((np.arange(len(self.quality)), self.quality))


def classes_check(counts: dict[str, int], class_names: list[str], folds: int) -> list[str]:
    """The classes that take part (those with labels, schema order); LabelIssueDataError when they cannot.

    `counts` is label name → gold labels. Cheap, so a caller can refuse a request
    before queueing the expensive job.
    """
    unknown = sorted(set(counts) - set(class_names))
    if unknown:
        raise LabelIssueDataError(f"Labels not in the schema: {', '.join(unknown)}.")
    present = [name for name in class_names if counts.get(name, 0) > 0]
    if len(present) < 2:
        raise LabelIssueDataError(
            "Finding label issues needs gold labels of at least two classes; "
            f"found {len(present)} ({', '.join(present) or 'none'})."
        )
    short = [f"{name} ({counts[name]})" for name in present if counts[name] < folds]
    if short:
        raise LabelIssueDataError(
            f"Finding label issues uses {folds}-fold cross-validation, so every class needs at least {folds} "
            f"gold labels; too few for: {', '.join(short)}."
        )
    return present


def _encode(labels: list[str], class_names: list[str], folds: int) -> tuple[np.ndarray, list[str]]:
    """Labels as 0..K-1 over the classes that occur (schema order), after `classes_check`."""
    counts = pd.Series(labels, dtype="object").value_counts()
    present = classes_check({str(name): int(n) for name, n in counts.items()}, class_names, folds)
    index = {name: position for position, name in enumerate(present)}
    return np.fromiter((index[label] for label in labels), dtype=np.int64, count=len(labels)), present


def out_of_fold_probabilities(
    frame: pd.DataFrame,
    encoded: np.ndarray,
    features: list[FeatureSpec],
    *,
    folds: int = DEFAULT_FOLDS,
    seed: int = 0,
) -> np.ndarray:
    """(rows, K) probabilities for labels encoded 0..K-1, each row predicted by a model fitted without it.

    Precondition: every code 0..K-1 occurs at least `folds` times (`_encode` checks).
    The pipeline's own calibration folds are sized for the smallest class in a
    training fold (StratifiedKFold leaves at least count − ⌈count / folds⌉ rows of each).
    """
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    smallest = int(np.bincount(encoded).min())
    smallest_in_training = smallest - -(-smallest // folds)
    pipeline = build_pipeline(features, smallest_in_training, seed=seed)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    text = [f.name for f in features if f.dtype == "text"]
    if text:  # a missing note is an empty one to the vectoriser
        frame = frame.assign(**{name: frame[name].fillna("").astype(str) for name in text})
    try:
        probabilities: Any = cross_val_predict(pipeline, frame, encoded, cv=splitter, method="predict_proba")
    except ValueError as error:
        if "vocabulary" in str(error) or "no terms remain" in str(error):  # TfidfVectorizer on a fold
            raise LabelIssueDataError(
                "The free-text features hold no words to learn from in some fold; add other features or text."
            ) from error
        raise
    return np.asarray(probabilities, dtype=float)


def label_issue_scores(
    frame: pd.DataFrame,
    labels: list[str],
    features: list[FeatureSpec],
    class_names: list[str],
    *,
    folds: int = DEFAULT_FOLDS,
    seed: int = 0,
) -> LabelIssueScores:
    """Label quality and issue flags for each row's `labels` entry. Raises LabelIssueDataError when it cannot."""
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    if len(labels) != len(frame):
        raise LabelIssueDataError("labels and rows differ in length")
    if folds < 2:
        raise LabelIssueDataError(f"Cross-validation needs at least 2 folds, not {folds}.")
    encoded, present = _encode(labels, class_names, folds)
    probabilities = out_of_fold_probabilities(frame, encoded, features, folds=folds, seed=seed)
    quality = get_label_quality_scores(encoded, probabilities, method="self_confidence")
    # n_jobs=1: cleanlab would otherwise start a process pool, which a Celery prefork
    # worker (a daemonic process) may not do, and the machine's cores are shared anyway.
    is_issue = find_label_issues(encoded, probabilities, filter_by="prune_by_noise_rate", n_jobs=1)
    return LabelIssueScores(
        quality=np.clip(np.asarray(quality, dtype=float), 0.0, 1.0),
        is_issue=np.asarray(is_issue, dtype=bool),
        probabilities=probabilities,
        classes=present,
        folds=folds,
    )
