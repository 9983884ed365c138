"""Comparing two models' holdout metrics: which way is better, by how much, and a verdict.

Pure Python (no Django, no I/O), so the pages, the promotion service and the
tests all read the same rules:

- Every tracked metric has a direction. Accuracy, balanced accuracy and macro
  F1 are better higher; log loss, the Brier score and the expected calibration
  error (ECE) are better lower. A page must never show a bare "+0.02" and leave
  the reader to guess whether that is good news.
- A difference within the metric's tolerance (absolute, in its own unit) is
  "same": a 0.1-point wobble on a 100-item holdout is noise, not a regression.
  Accuracy-like fractions use `TOLERANCE` (half a percentage point); the
  unbounded or squared losses get a wider one, as they move more for the same
  change in what is predicted.
- Two sets of metrics are only compared when they were measured on the same
  holdout (same content hash). Callers check that (models_app.selectors) and
  say "not comparable" instead of calling `compare_metrics`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Absolute: 0.005 is half a percentage point of accuracy.
TOLERANCE = 0.005


@dataclass(frozen=True)
class Metric:
    key: str  # the key in the metrics dict that models_app.ml.metrics writes
    label: str
    higher_is_better: bool
    is_fraction: bool  # shown as a percentage as well (accuracy-like, between 0 and 1)
    tolerance: float = TOLERANCE

    @property
    def direction(self) -> str:
        return "higher is better" if self.higher_is_better else "lower is better"


TRACKED_METRICS: tuple[Metric, ...] = (
    Metric("accuracy", "Accuracy", higher_is_better=True, is_fraction=True),
    Metric("balanced_accuracy", "Balanced accuracy", higher_is_better=True, is_fraction=True),
    Metric("macro_f1", "Macro F1", higher_is_better=True, is_fraction=True),
    Metric("log_loss", "Log loss", higher_is_better=False, is_fraction=False, tolerance=0.02),
    Metric("brier", "Brier score", higher_is_better=False, is_fraction=False, tolerance=0.01),
    Metric("ece", "Expected calibration error", higher_is_better=False, is_fraction=False, tolerance=0.01),
)


class Verdict(enum.StrEnum):
    BETTER = "better"
    WORSE = "worse"
    SAME = "same"


_SYMBOLS = {Verdict.BETTER: "▲", Verdict.WORSE: "▼", Verdict.SAME: "="}
_WORDS = {Verdict.BETTER: "better", Verdict.WORSE: "worse", Verdict.SAME: "same within tolerance"}


@dataclass(frozen=True)
class MetricComparison:
    """One metric of a candidate against a reference (usually the current champion)."""

    metric: Metric
    candidate: float | None
    reference: float | None
    delta: float | None  # candidate − reference, in the metric's unit; None if either is missing
    verdict: Verdict | None  # None when there is nothing to compare against

    @property
    def label(self) -> str:
        return self.metric.label

    @property
    def is_regression(self) -> bool:
        return self.verdict is Verdict.WORSE

    @property
    def symbol(self) -> str:
        """▲ better, ▼ worse, = same: always shown next to `words`, never alone or as colour only."""
        return _SYMBOLS[self.verdict] if self.verdict else ""

    @property
    def words(self) -> str:
        return _WORDS[self.verdict] if self.verdict else ""

    @property
    def candidate_pct(self) -> float | None:
        return _pct(self.candidate) if self.metric.is_fraction else None

    @property
    def reference_pct(self) -> float | None:
        return _pct(self.reference) if self.metric.is_fraction else None

    def sentence(self, *, candidate_name: str, reference_name: str) -> str:
        """E.g. 'v2 is worse than v1 on accuracy: 0.900 against 0.950 (-0.050; higher is better).'"""
        delta = "" if self.delta is None else f"{_signed(self.delta)}; "
        return (
            f"{candidate_name} is {self.words} than {reference_name} on {self.metric.label.lower()}: "
            f"{_fmt(self.candidate)} against {_fmt(self.reference)} ({delta}{self.metric.direction})."
        )


def compare_metric(
    metric: Metric, candidate: float | None, reference: float | None, *, tolerance: float | None = None
) -> MetricComparison:
    """`tolerance` None: the metric's own."""
    if candidate is None or reference is None:
        return MetricComparison(metric, candidate, reference, None, None)
    delta = candidate - reference
    if abs(delta) <= (metric.tolerance if tolerance is None else tolerance):
        verdict = Verdict.SAME
    elif (delta > 0) == metric.higher_is_better:
        verdict = Verdict.BETTER
    else:
        verdict = Verdict.WORSE
    return MetricComparison(metric, candidate, reference, delta, verdict)


def compare_metrics(
    candidate: Mapping[str, Any], reference: Mapping[str, Any] | None, *, tolerance: float | None = None
) -> list[MetricComparison]:
    """Each tracked metric the candidate has, against the reference's (None: no reference).

    Precondition: both were measured on the same holdout.
    """
    reference = reference or {}
    rows = []
    for metric in TRACKED_METRICS:
        value = _number(candidate.get(metric.key))
        if value is None:
            continue
        rows.append(compare_metric(metric, value, _number(reference.get(metric.key)), tolerance=tolerance))
    return rows


def regressions(rows: list[MetricComparison]) -> list[MetricComparison]:
    return [row for row in rows if row.is_regression]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _pct(value: float | None) -> float | None:
    return None if value is None else round(value * 100, 1)


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def _signed(value: float) -> str:
    # As the pages' |signed filter writes it.
    return f"{value:+.3f}"
