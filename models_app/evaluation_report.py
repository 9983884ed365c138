"""The candidate's evaluation report, ready to draw (run page): figures read from the stored evaluations,
chart coordinates computed here so the template only places them.

Reads what the training run stored (Evaluation.metrics of the candidate and of the champion on the same
holdout, and the paired test in the candidate's "paired" key); computes nothing about the models anew.
Versions trained before these figures existed simply show less (each part is None when its data is absent).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from models_app.models import Evaluation, ModelVersion

# The reliability chart's drawing box (SVG user units): x = mean confidence, y = accuracy, both 0..1.
_SIZE = 100


@dataclass(frozen=True)
class ReliabilityLine:
    who: str  # "candidate" | "champion"
    points: str  # SVG polyline points
    dots: list[dict[str, Any]]  # {x, y, count, confidence, accuracy}


@dataclass(frozen=True)
class EvaluationReport:
    n: int
    paired: dict[str, Any] | None
    lines: list[ReliabilityLine] = field(default_factory=list)
    ece: dict[str, float | None] = field(default_factory=dict)
    per_class: list[dict[str, Any]] = field(default_factory=list)
    confusion: list[dict[str, Any]] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    subgroups: list[dict[str, Any]] = field(default_factory=list)
    min_group_size: int | None = None


def evaluation_report(version: ModelVersion) -> EvaluationReport | None:
    """None when the version has no holdout evaluation (no holdout when it was trained)."""
    evaluations = {e.role: e.metrics for e in Evaluation.objects.filter(training_run_id=version.training_run_id)}
    candidate = evaluations.get(Evaluation.Role.CANDIDATE) or {}
    if not candidate.get("n"):
        return None
    champion = evaluations.get(Evaluation.Role.CHAMPION) or {}
    lines = [line for line in (_line("candidate", candidate), _line("champion", champion)) if line is not None]
    classes = list(candidate.get("classes") or version.class_names)
    matrix = candidate.get("confusion_matrix") or []
    return EvaluationReport(
        n=candidate["n"],
        paired=candidate.get("paired"),
        lines=lines,
        ece={"candidate": candidate.get("ece"), "champion": champion.get("ece")},
        per_class=[{"name": name, **figures} for name, figures in (candidate.get("per_class") or {}).items()],
        confusion=[{"truth": classes[i], "counts": row} for i, row in enumerate(matrix) if i < len(classes)],
        classes=classes,
        subgroups=_subgroups(candidate, champion),
        min_group_size=candidate.get("min_group_size"),
    )


def _line(who: str, metrics: dict[str, Any]) -> ReliabilityLine | None:
    bins = [b for b in metrics.get("reliability") or [] if b.get("count") and b.get("mean_confidence") is not None]
    if not bins:
        return None
    dots = [
        {
            "x": round(b["mean_confidence"] * _SIZE, 2),
            "y": round((1 - b["accuracy"]) * _SIZE, 2),  # SVG's y grows downward
            "count": b["count"],
            "confidence": b["mean_confidence"],
            "accuracy": b["accuracy"],
        }
        for b in bins
    ]
    return ReliabilityLine(who, " ".join(f"{d['x']},{d['y']}" for d in dots), dots)


def _subgroups(candidate: dict[str, Any], champion: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for feature, groups in (candidate.get("subgroups") or {}).items():
        theirs = (champion.get("subgroups") or {}).get(feature) or {}
        for value, figures in groups.items():
            rows.append(
                {
                    "feature": feature,
                    "value": value,
                    "n": figures.get("n"),
                    "accuracy": figures.get("accuracy"),
                    "ci": figures.get("accuracy_ci"),
                    "champion_accuracy": (theirs.get(value) or {}).get("accuracy"),
                    "reason": figures.get("reason"),
                }
            )
    return rows
