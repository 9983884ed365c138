"""A candidate and the current champion on the same sequestered holdout (issue 9, point 9).

Both are judged by models_app/ml/evaluation.py (every figure of the report,
subgroups of the dataset's sensitive features with bootstrap intervals and
suppression of small groups), and the difference by models_app/ml/paired.py
(exact McNemar and a paired bootstrap on the very same rows, with the smallest
difference this holdout could detect, and the paired interval per subgroup),
so "+0.006" is never read as "better" on its own.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from annotations.models import Dataset
from models_app.data import frame_for_items, holdout_labels, labels_hash
from models_app.ml.algorithms.base import FeatureSpec
from models_app.ml.evaluation import evaluate
from models_app.ml.paired import compare_paired
from models_app.model_runtime import LoadedModel, model_load
from models_app.models import ModelVersion

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HoldoutComparison:
    """Candidate and champion measured on the same sequestered holdout."""

    size: int
    labels_hash: str
    candidate_metrics: dict[str, Any]
    champion: ModelVersion | None
    champion_metrics: dict[str, Any] | None  # None: no champion, or it could not be evaluated


@dataclass(frozen=True)
class _Holdout:
    """The sequestered holdout as the evaluation reads it: ids, true labels, sensitive features' values."""

    item_ids: list[int]
    labels: list[str]
    groups: dict[str, np.ndarray]


def _holdout_read(dataset: Any, rows: list[tuple[int, str, str]]) -> _Holdout:
    ids = [item_id for item_id, _, _ in rows]
    sensitive = [
        FeatureSpec(f.name, f.dtype, tuple(f.categories or ()))
        for f in dataset.features.filter(is_sensitive=True).order_by("position")
    ]
    groups: dict[str, np.ndarray] = {}
    if ids and sensitive:
        frame = frame_for_items(ids, sensitive)
        groups = {spec.name: frame[spec.name].to_numpy() for spec in sensitive}
    return _Holdout(ids, [label for _, _, label in rows], groups)


def _holdout_proba(model: LoadedModel, holdout: _Holdout, classes: list[str]) -> np.ndarray:
    return model.predict_proba(frame_for_items(holdout.item_ids, list(model.spec.features)), classes)


def _evaluate(proba: np.ndarray | None, holdout: _Holdout, classes: list[str], seed: int) -> dict:
    """Every figure of the report (models_app/ml/evaluation.py), subgroups of the sensitive features included."""
    if proba is None or not holdout.item_ids:
        return {"n": 0}
    return evaluate(holdout.labels, proba, classes, groups=holdout.groups or None, seed=seed)


def _champion_proba(champion: ModelVersion, holdout: _Holdout, classes: list[str]) -> np.ndarray | None:
    """The champion's probabilities on today's holdout; None (logged) if it cannot be evaluated.

    A champion whose artifact fails its hash check, or whose classes no longer
    match the schema, must not stop a new candidate from being trained: the
    comparison is then shown as missing, and promotion review sees that.
    """
    try:
        return _holdout_proba(model_load(champion), holdout, classes)
    except Exception:
        logger.exception("Could not evaluate champion v%s on the holdout", champion.version)
        return None


def holdout_compare(
    *, dataset: Dataset, candidate: LoadedModel, champion: ModelVersion | None, seed: int
) -> HoldoutComparison:
    """Evaluate the candidate, and the champion as it is now, on today's holdout; the paired test between them
    goes with the candidate's figures (key "paired")."""
    rows = holdout_labels(dataset)
    holdout = _holdout_read(dataset, rows)
    classes = list(candidate.spec.class_names)
    candidate_proba = _holdout_proba(candidate, holdout, classes) if holdout.item_ids else None
    champion_proba = _champion_proba(champion, holdout, classes) if champion and holdout.item_ids else None
    candidate_metrics = _evaluate(candidate_proba, holdout, classes, seed)
    champion_metrics = None
    if champion_proba is not None:
        champion_metrics = _evaluate(champion_proba, holdout, classes, seed)
        # Subgroups as in _evaluate (same features, same size rule): the subgroup gates judge these intervals.
        candidate_metrics["paired"] = compare_paired(
            holdout.labels, champion_proba, candidate_proba, classes, groups=holdout.groups or None, seed=seed
        )
    return HoldoutComparison(
        size=len(rows),
        labels_hash=labels_hash(rows),
        candidate_metrics=candidate_metrics,
        champion=champion,
        champion_metrics=champion_metrics,
    )


@dataclass(frozen=True)
class OutOfTimeComparison:
    """A version and the current champion on the corrections reviewers made after both had frozen their
    training data: rows neither model saw, from the weeks the model would actually serve."""

    rows: int
    since: Any  # the later of the two snapshots' freeze times
    paired: dict[str, Any] | None  # compare_paired's figures; None when there are no such rows


OUT_OF_TIME_LIMIT = 5000  # the most recent corrections only: a page view predicts them with both models


def out_of_time_compare(*, version: ModelVersion, champion: ModelVersion | None, seed: int = 0) -> OutOfTimeComparison:
    """The out-of-time set (issue 9, point 9): gold labels from reviews (review, consensus, adjudication; never
    an imported label) of items in neither model's snapshot, updated after both snapshots were frozen, newest
    first up to OUT_OF_TIME_LIMIT. Read when a decision is made (the promotion page), not at training time,
    when no such rows exist yet."""
    if champion is None or champion.pk == version.pk:
        return OutOfTimeComparison(0, None, None)
    since = max(version.snapshot.created_at, champion.snapshot.created_at)
    rows = list(
        _out_of_time_golds(version, champion, since)
        .order_by("-updated_at")
        .values_list("item_id", "label__name")[:OUT_OF_TIME_LIMIT]
    )
    if not rows:
        return OutOfTimeComparison(0, since, None)
    rows.sort()
    set_ = _Holdout([item_id for item_id, _ in rows], [label for _, label in rows], {})
    classes = list(version.class_names)
    try:
        candidate = _holdout_proba(model_load(version), set_, classes)
        reference = _holdout_proba(model_load(champion), set_, classes)
    except Exception:
        logger.exception("Out-of-time comparison of v%s against v%s failed", version.version, champion.version)
        return OutOfTimeComparison(len(rows), since, None)
    return OutOfTimeComparison(len(rows), since, compare_paired(set_.labels, reference, candidate, classes, seed=seed))


def out_of_time_size(*, version: ModelVersion, champion: ModelVersion | None) -> int:
    """How many rows out_of_time_compare would judge on (at most OUT_OF_TIME_LIMIT), without predicting any:
    0 when there is no champion to compare with."""
    if champion is None or champion.pk == version.pk:
        return 0
    since = max(version.snapshot.created_at, champion.snapshot.created_at)
    return _out_of_time_golds(version, champion, since)[:OUT_OF_TIME_LIMIT].count()


def _out_of_time_golds(version: ModelVersion, champion: ModelVersion, since: Any) -> Any:
    """Gold labels from reviews of items in neither snapshot, derived after both were frozen."""
    from annotations.models import GoldLabel
    from models_app.models import SnapshotLabel

    seen = SnapshotLabel.objects.filter(snapshot_id__in=[version.snapshot_id, champion.snapshot_id]).values("item_id")
    return GoldLabel.objects.filter(
        dataset_id=version.dataset_id,
        origin__in=[GoldLabel.Origin.REVIEW, GoldLabel.Origin.CONSENSUS, GoldLabel.Origin.ADJUDICATION],
        updated_at__gt=since,
        item__purged_at__isnull=True,  # retention removed their data: nothing to predict from
    ).exclude(item_id__in=seen)
