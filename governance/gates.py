"""Promotion gates (issue 10, point 4): judged against the *current* champion, stored with each decision.

Each gate reads the paired comparison on the sequestered holdout (models_app/ml/paired.py) and the
candidate's own evaluation (models_app/ml/evaluation.py). When the champion has changed since the
candidate was trained, the comparison is made again against today's champion (both models predict
the holdout), so a gate never passes against a champion that is no longer live. Regressions are
judged by the bootstrap interval, not the point estimate: a gate fails only when the candidate is
worse with 95% confidence by more than the tolerance, which is what "no regression beyond
tolerance" can honestly mean on a holdout of a few hundred rows.

Overall and per subgroup the rule is the same: the paired bootstrap interval of the accuracy
difference, candidate − champion, on the same holdout rows (a subgroup's rows alone), fails when
the whole interval lies below −tolerance. One model's interval set against the other's point
estimate would ignore both the champion's own noise and the pairing. A subgroup smaller than the
evaluation's minimum (models_app/ml/evaluation.py) is listed as not judged, and does not block. An
evaluation stored before the paired subgroup intervals were (a candidate trained before then whose
champion is still live; a new champion is compared afresh) cannot judge a subgroup: that gate fails,
saying so, like a champion that could not be evaluated, so only a signed override lets such a
candidate through unjudged.

A failed gate blocks an ordinary approval; the approver may override it only by signing an
approval whose meaning is "override", with a reason (governance/promotions.py).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from annotations.models import Dataset
from governance.models import PromotionGates
from models_app.holdout_evaluation import holdout_compare
from models_app.model_runtime import model_load
from models_app.models import Evaluation, ModelVersion


@dataclass(frozen=True)
class GateResult:
    gate: str
    passed: bool
    detail: str
    judged: bool = True  # False: the figures to judge it by are missing (a failed gate says why)


def gates_for(dataset: Dataset) -> PromotionGates:
    """The dataset's gates (the defaults when a model admin has not set them)."""
    return PromotionGates.objects.filter(dataset=dataset).first() or PromotionGates(dataset=dataset)


def current_champion(dataset_id: int) -> ModelVersion | None:
    return ModelVersion.objects.filter(dataset_id=dataset_id, stage=ModelVersion.Stage.CHAMPION).first()


_NOW = object()  # gates_evaluate's default: read the champion now


def gates_evaluate(version: ModelVersion, *, champion: Any = _NOW) -> list[dict[str, Any]]:
    """Every gate of the version's dataset against `champion` (default: the current one), as JSON-ready dicts.

    May predict the holdout with both models (when the champion changed since training): a caller that holds
    locks evaluates first, outside them, and passes the champion it evaluated against (governance/promotions.py).
    """
    gates = gates_for(version.dataset)
    if champion is _NOW:
        champion = current_champion(version.dataset_id)
    candidate, paired, _ = _figures(version, champion)
    results = []
    accuracy = candidate.get("accuracy")
    if gates.min_holdout_accuracy is not None:
        passed = accuracy is not None and accuracy >= gates.min_holdout_accuracy
        results.append(
            GateResult(
                "minimum holdout accuracy",
                passed,
                f"{_pct(accuracy)} against a minimum of {_pct(gates.min_holdout_accuracy)}",
            )
        )
    if champion is not None and champion.pk != version.pk:
        results += _regression_gates(gates, candidate, paired)
    if gates.max_ece is not None:
        ece = candidate.get("ece")
        passed = ece is not None and ece <= gates.max_ece
        results.append(GateResult("calibration", passed, f"ECE {_num(ece)} against a limit of {gates.max_ece:.3f}"))
    return [asdict(r) for r in results]


def gates_failed(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in results if not r["passed"]]


def _figures(version: ModelVersion, champion: ModelVersion | None) -> tuple[dict, dict | None, dict | None]:
    """(candidate's holdout figures, paired vs the current champion, the champion's figures)."""
    stored = {e.role: e for e in Evaluation.objects.filter(training_run_id=version.training_run_id)}
    candidate = stored[Evaluation.Role.CANDIDATE].metrics if Evaluation.Role.CANDIDATE in stored else {}
    if champion is None or champion.pk == version.pk:
        return candidate, None, None
    then = stored.get(Evaluation.Role.CHAMPION)
    if then is not None and then.model_version_id == champion.pk and "paired" in candidate:
        return candidate, candidate["paired"], then.metrics
    # The champion changed since training: compare again, on today's holdout, against today's champion.
    fresh = holdout_compare(
        dataset=version.dataset, candidate=model_load(version), champion=champion, seed=version.training_run.seed
    )
    return fresh.candidate_metrics, fresh.candidate_metrics.get("paired"), fresh.champion_metrics


def holdout_figures(version: ModelVersion, champion: ModelVersion | None) -> tuple[dict, dict | None, dict | None]:
    """What the gates judge by, for other judges of the same candidate (the change envelope, governance/envelope.py):
    (the candidate's holdout figures, the paired comparison with `champion`, the champion's figures)."""
    return _figures(version, champion)


def _regression_gates(gates: PromotionGates, candidate: dict, paired: dict | None) -> list[GateResult]:
    out = []
    if paired is None:
        return [GateResult("no regression", False, "the champion could not be evaluated on the holdout")]
    low, high = paired.get("accuracy_difference_ci") or (None, None)
    limit = gates.max_regression_points / 100
    passed = high is None or high >= -limit
    out.append(
        GateResult(
            "no regression overall",
            passed,
            f"accuracy difference {_points(paired.get('accuracy_difference'))} (95% interval {_points(low)} to "
            f"{_points(high)}); fails when the whole interval is below −{gates.max_regression_points:g} points",
        )
    )
    if gates.paired_test_not_worse:
        out.append(
            GateResult("paired test", paired.get("verdict") != "worse", paired.get("verdict_words", "no verdict"))
        )
    return out + _subgroup_gates(gates, candidate, paired)


def _subgroup_gates(gates: PromotionGates, candidate: dict, paired: dict) -> list[GateResult]:
    """One gate per value of each sensitive feature, judged by the paired interval on that subgroup's rows."""
    tolerance = gates.max_subgroup_regression_points
    if "subgroups" not in paired:
        return _subgroup_gates_unjudgeable(candidate)
    out = []
    for feature, groups in paired["subgroups"].items():
        for value, figures in groups.items():
            name = f"subgroup {feature} = {value}"
            low, high = figures.get("accuracy_difference_ci") or (None, None)
            if low is None or high is None:
                why = figures.get("reason") or "no interval"
                out.append(GateResult(name, True, f"not judged: {why} on the holdout", judged=False))
                continue
            out.append(
                GateResult(
                    name,
                    high >= -tolerance / 100,
                    f"candidate {_pct(figures.get('accuracy_candidate'))} against the champion's "
                    f"{_pct(figures.get('accuracy_champion'))} on the same {figures.get('n')} holdout rows: "
                    f"accuracy difference {_points(figures.get('accuracy_difference'))} (95% interval "
                    f"{_points(low)} to {_points(high)}); fails when the whole interval is below "
                    f"−{tolerance:g} points",
                )
            )
    return out


def _subgroup_gates_unjudgeable(candidate: dict) -> list[GateResult]:
    """The stored comparison predates the paired subgroup intervals: no subgroup large enough to judge can be
    judged from it (failed, so only a signed override passes it); smaller ones were never judged."""
    out = []
    for feature, groups in (candidate.get("subgroups") or {}).items():
        for value, figures in groups.items():
            name = f"subgroup {feature} = {value}"
            if figures.get("accuracy") is None:
                why = figures.get("reason") or "no figures"
                out.append(GateResult(name, True, f"not judged: {why} on the holdout", judged=False))
            else:
                out.append(
                    GateResult(
                        name,
                        False,
                        f"cannot be judged from the stored evaluation: it has no paired interval of the accuracy "
                        f"difference on this subgroup's {figures.get('n')} holdout rows (it was stored before "
                        "those were); retrain to judge it, or approve only as a signed override",
                        judged=False,
                    )
                )
    return out


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def _points(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:+.1f} points"


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


GATE_FIELDS = (
    "min_holdout_accuracy",
    "max_regression_points",
    "max_subgroup_regression_points",
    "max_ece",
    "paired_test_not_worse",
)


def promotion_gates_update(*, dataset: Dataset, user: Any, values: dict[str, Any]) -> PromotionGates:
    """Set a dataset's gates (a model admin's act, audited with what changed). ValidationError by field."""
    from django.core.exceptions import ValidationError
    from django.db import transaction

    from governance.audit import audit_record

    errors = {}
    for name in ("min_holdout_accuracy", "max_ece"):
        value = values.get(name)
        if value is not None and not 0 <= value <= 1:
            errors[name] = "A fraction between 0 and 1, or empty for no gate."
    for name in ("max_regression_points", "max_subgroup_regression_points"):
        value = values.get(name)
        if value is None or not 0 <= value <= 100:
            errors[name] = "Accuracy points between 0 and 100."
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        Dataset.objects.select_for_update(no_key=True).get(pk=dataset.pk)
        gates, _ = PromotionGates.objects.get_or_create(dataset=dataset)
        before = {name: getattr(gates, name) for name in GATE_FIELDS}
        for name in GATE_FIELDS:
            setattr(gates, name, values.get(name))
        gates.save()
        after = {name: getattr(gates, name) for name in GATE_FIELDS}
        audit_record(
            actor=user,
            action="promotion_gates.updated",
            obj=gates,
            object_type="promotion_gates",
            dataset_id=dataset.pk,
            before={k: v for k, v in before.items() if after[k] != v},
            after={k: v for k, v in after.items() if before[k] != v},
        )
    return gates
