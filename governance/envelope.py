"""Judging a candidate against its dataset's change envelope, clause by clause (issue 10, point 5).

`envelope_check(model_version=...)` reads the envelope version active *now* (the approved version with the
highest number, governance/envelope_models.py), judges the version's training run against each clause, and
stores the result as an EnvelopeAssessment (audited), so a promotion decision keeps what was judged even
after the envelope or the champion changes. A candidate outside the envelope is a *substantial change*:
promotion_request_create and promotion_decide refuse it (governance/promotions.py) until a new envelope
version that covers it is signed and approved. No envelope configured: the check says "no envelope", stores
nothing and blocks nothing (datasets keep working as before an envelope existed).

What each clause reads:
- algorithm and hyperparameters: the training run's algorithm and the hyperparameters the fit actually used
  (fit_info["params"], defaults filled in), else the run's requested ones over the catalogue's defaults;
- label sources: the origin of every label in the frozen snapshot. SnapshotLabel keeps the gold label and the
  review it came from, not the origin, and a gold label may have been re-derived since; so a label whose
  review is gone is "import", an adjudicator's review is "adjudication", and otherwise the gold label's origin
  counts only while that gold label still comes from the same review; if not, the weaker "review" is assumed
  (a strict envelope refuses rather than guesses in the candidate's favour);
- evaluation sets: the holdout the candidate was evaluated on (rows), and the out-of-time set (corrections
  made after both models froze their data) against the current champion; with no champion there is no such
  set and the clause says so rather than failing a first model forever;
- acceptance: holdout accuracy and ECE as the gates read them, and the accuracy difference from the current
  champion on the same holdout (the point estimate: the envelope is the plan's stated limit; the gates judge
  the interval).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Count, F, Q

from annotations.models import GoldLabel, Review
from governance.audit import audit_record
from governance.envelope_clauses import ALLOWED_ORIGINS, EVALUATION_SETS, LabelSources
from governance.gates import current_champion, holdout_figures
from governance.models import ChangeEnvelopeSignoff, ChangeEnvelopeVersion, EnvelopeAssessment
from models_app.holdout_evaluation import OUT_OF_TIME_LIMIT, out_of_time_size
from models_app.ml.algorithms.catalogue import catalogue
from models_app.models import ModelVersion, SnapshotLabel

NO_ENVELOPE = "No change envelope is configured for this dataset: nothing is checked and nothing is blocked."
SUBSTANTIAL = (
    "This is a substantial change: it needs a new change-envelope version (drafted and signed by one model "
    "admin, approved by another) that covers it before it can be promoted."
)


def envelope_active(dataset_id: int) -> ChangeEnvelopeVersion | None:
    """The dataset's active envelope version: its approved version with the highest number (None: no envelope)."""
    approved = ChangeEnvelopeSignoff.objects.filter(
        version__dataset_id=dataset_id, kind=ChangeEnvelopeSignoff.Kind.APPROVAL
    ).values("version_id")
    return (
        ChangeEnvelopeVersion.objects.filter(pk__in=approved).select_related("authored_by").order_by("-number").first()
    )


_NOW = object()  # envelope_check's default: the champion of this moment


def envelope_check(
    *, model_version: ModelVersion, actor: AbstractBaseUser | None = None, champion: Any = _NOW
) -> EnvelopeAssessment:
    """Judge `model_version` against the active envelope version, store the result (audited) and return it.

    Without an envelope: an unsaved assessment whose `envelope_version_id` is None (nothing is stored). When
    the newest stored assessment of this version under this envelope version found the same (same clauses,
    same champion), that row is returned and nothing new is written. May predict the holdout with two models
    (when the champion changed since training, as the gates do): callers that hold locks check first.
    """
    envelope = envelope_active(model_version.dataset_id)
    if envelope is None:
        return EnvelopeAssessment(model_version=model_version, clauses=[], within=True, substantial_change=False)
    if champion is _NOW:
        champion = current_champion(model_version.dataset_id)
    clauses = envelope_clauses_judge(envelope=envelope, version=model_version, champion=champion)
    within = all(c["passed"] for c in clauses)
    champion_id = champion.pk if champion is not None else None
    latest = (
        EnvelopeAssessment.objects.filter(model_version=model_version, envelope_version=envelope)
        .order_by("-created_at", "-pk")
        .first()
    )
    if latest is not None and latest.clauses == clauses and latest.champion_id == champion_id:
        return latest
    with transaction.atomic():
        assessment = EnvelopeAssessment.objects.create(
            model_version=model_version,
            envelope_version=envelope,
            champion=champion,
            clauses=clauses,
            within=within,
            substantial_change=not within,
            checked_by=actor,
        )
        audit_record(
            actor=actor,
            action="change_envelope.assessed",
            obj=assessment,
            object_type="envelope_assessment",
            dataset_id=model_version.dataset_id,
            after={
                "model_version": model_version.version,
                "envelope_version": envelope.number,
                "within": within,
                "substantial_change": not within,
                "failed_clauses": [c["clause"] for c in clauses if not c["passed"]],
            },
        )
    return assessment


def envelope_preview(*, model_version: ModelVersion) -> EnvelopeAssessment:
    """The assessment envelope_check would make now, without storing it (for pages: a GET writes nothing).

    May predict the holdout with two models when the champion changed since training, as the gates do."""
    envelope = envelope_active(model_version.dataset_id)
    if envelope is None:
        return EnvelopeAssessment(model_version=model_version, clauses=[], within=True, substantial_change=False)
    champion = current_champion(model_version.dataset_id)
    clauses = envelope_clauses_judge(envelope=envelope, version=model_version, champion=champion)
    within = all(c["passed"] for c in clauses)
    return EnvelopeAssessment(
        model_version=model_version,
        envelope_version=envelope,
        champion=champion,
        clauses=clauses,
        within=within,
        substantial_change=not within,
    )


def latest_assessments(*, versions: list[ModelVersion], envelope: ChangeEnvelopeVersion | None) -> dict[int, Any]:
    """Each version's newest stored assessment under `envelope` (version id → assessment; absent: not checked)."""
    if envelope is None:
        return {}
    out: dict[int, EnvelopeAssessment] = {}
    for assessment in EnvelopeAssessment.objects.filter(
        envelope_version=envelope, model_version__in=[v.pk for v in versions]
    ).order_by("created_at", "pk"):
        out[assessment.model_version_id] = assessment  # the newest wins
    return out


def assessment_failed(assessment: EnvelopeAssessment) -> list[dict[str, Any]]:
    return [c for c in assessment.clauses if not c["passed"]]


def assessment_refusal(assessment: EnvelopeAssessment) -> str:
    """The message that refuses a substantial change, naming the failed clauses."""
    names = "; ".join(f"{c['clause']} ({c['explanation']})" for c in assessment_failed(assessment))
    return (
        f"v{assessment.model_version.version} is outside the change envelope "
        f"(v{assessment.envelope_version.number}). Failed clause(s): {names}. {SUBSTANTIAL}"
    )


def assessment_summary(assessment: EnvelopeAssessment) -> dict[str, Any]:
    """What a decision record and a model card keep of an assessment."""
    if assessment.envelope_version_id is None:
        return {"envelope": None, "verdict": "no envelope", "words": NO_ENVELOPE}
    return {
        "envelope": assessment.envelope_version.number,
        "assessment": assessment.pk,
        "verdict": "within the envelope" if assessment.within else "substantial change",
        "within": assessment.within,
        "substantial_change": assessment.substantial_change,
        "checked_at": assessment.created_at,
        "clauses": assessment.clauses,
    }


# --- the clauses --------------------------------------------------------------------------------------------


def envelope_clauses_judge(
    *, envelope: ChangeEnvelopeVersion, version: ModelVersion, champion: ModelVersion | None
) -> list[dict[str, Any]]:
    """Every clause of `envelope` judged on `version`: name, expected, actual, passed, explanation."""
    terms = envelope.clauses
    out = _algorithm_clauses(terms.get("algorithms") or {}, version)
    out.append(_label_source_clause(terms.get("label_sources", LabelSources.ANY), version))
    sets = terms.get("evaluation_sets") or {}
    acceptance = {k: v for k, v in (terms.get("acceptance") or {}).items() if v is not None}
    needs_figures = bool(acceptance) or (sets.get("holdout") or {}).get("min_size") is not None
    candidate, paired, _ = holdout_figures(version, champion) if needs_figures else ({}, None, None)
    holdout_min = (sets.get("holdout") or {}).get("min_size")
    if holdout_min is not None:
        rows = candidate.get("n") or 0
        out.append(
            _clause(
                "evaluation set: holdout",
                f"at least {holdout_min} rows",
                rows,
                rows >= holdout_min,
                f"evaluated on {rows} rows of {EVALUATION_SETS['holdout']}",
            )
        )
    oot_min = (sets.get("out_of_time") or {}).get("min_size")
    if oot_min is not None:
        out.append(_out_of_time_clause(oot_min, version, champion))
    out += _acceptance_clauses(acceptance, candidate, paired, champion, version)
    return out


def _clause(name: str, expected: Any, actual: Any, passed: bool, explanation: str) -> dict[str, Any]:
    return {"clause": name, "expected": expected, "actual": actual, "passed": bool(passed), "explanation": explanation}


def _effective_params(version: ModelVersion, algorithm: str) -> dict[str, Any]:
    used = (version.fit_info or {}).get("params")
    if isinstance(used, dict) and used:
        return used
    entry = catalogue().get(algorithm)
    defaults = {h.name: h.default for h in entry.hyperparameters} if entry else {}
    return defaults | (version.training_run.hyperparameters or {})


def _algorithm_clauses(allowed: dict[str, dict[str, Any]], version: ModelVersion) -> list[dict[str, Any]]:
    algorithm = version.training_run.algorithm or version.algorithm
    names = sorted(allowed)
    out = [
        _clause(
            "algorithm",
            names,
            algorithm,
            algorithm in allowed,
            f"{algorithm} is {'one of' if algorithm in allowed else 'not among'} the allowed algorithms "
            f"({', '.join(names) or 'none'})",
        )
    ]
    if algorithm not in allowed:
        return out  # its hyperparameters have no ranges to be judged against
    params = _effective_params(version, algorithm)
    for name, bounds in sorted(allowed[algorithm].items()):
        value = params.get(name)
        out.append(_hyperparameter_clause(algorithm, name, bounds, value))
    return out


def _hyperparameter_clause(algorithm: str, name: str, bounds: dict[str, Any], value: Any) -> dict[str, Any]:
    label = f"hyperparameter {algorithm}.{name}"
    if "allowed" in bounds or "choices" in bounds:
        allowed = bounds.get("allowed", bounds.get("choices"))
        passed = value in allowed or str(value) in [str(a) for a in allowed]
        words = f"{value!r} is {'among' if passed else 'not among'} the allowed values {allowed!r}"
        return _clause(label, allowed, value, passed, words)
    low, high = bounds.get("min"), bounds.get("max")
    expected = f"{'−∞' if low is None else f'{low:g}'} to {'+∞' if high is None else f'{high:g}'}"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return _clause(label, expected, value, False, f"{value!r} is not a number")
    passed = (low is None or number >= low) and (high is None or number <= high)
    where = "within" if passed else "outside"
    return _clause(label, expected, value, passed, f"{number:g} is {where} the allowed range {expected}")


def label_origins(version: ModelVersion) -> dict[str, int]:
    """How many labels of the version's snapshot came from each GoldLabel origin (see the module docstring)."""
    adjudicated = Q(review__decision=Review.Decision.ADJUDICATE)
    same_review = Q(review__isnull=False) & Q(gold_label__review_id=F("review_id")) & ~adjudicated
    figures = SnapshotLabel.objects.filter(snapshot_id=version.snapshot_id).aggregate(
        imported=Count("pk", filter=Q(review__isnull=True)),
        adjudication=Count("pk", filter=adjudicated),
        consensus=Count("pk", filter=same_review & Q(gold_label__origin=GoldLabel.Origin.CONSENSUS)),
        total=Count("pk"),
    )
    counts = {
        GoldLabel.Origin.IMPORT: figures["imported"],
        GoldLabel.Origin.ADJUDICATION: figures["adjudication"],
        GoldLabel.Origin.CONSENSUS: figures["consensus"],
    }
    counts[GoldLabel.Origin.REVIEW] = figures["total"] - sum(counts.values())
    return {str(origin): n for origin, n in counts.items() if n}


def _label_source_clause(level: str, version: ModelVersion) -> dict[str, Any]:
    allowed = ALLOWED_ORIGINS.get(level, ALLOWED_ORIGINS[LabelSources.ANY])
    origins = label_origins(version)
    outside = {origin: n for origin, n in origins.items() if origin not in allowed}
    label = LabelSources(level).label if level in LabelSources.values else level
    if outside:
        words = "; ".join(f"{n} label(s) from {GoldLabel.Origin(o).label.lower()}" for o, n in sorted(outside.items()))
        explanation = f"the training snapshot holds labels this envelope does not allow: {words}"
    else:
        explanation = f"all {sum(origins.values())} labels of the training snapshot come from allowed sources"
    return _clause("label sources", label, origins, not outside, explanation)


def _out_of_time_clause(minimum: int, version: ModelVersion, champion: ModelVersion | None) -> dict[str, Any]:
    name = "evaluation set: out-of-time"
    if champion is None or champion.pk == version.pk:
        return _clause(
            name,
            f"at least {minimum} rows",
            None,
            True,
            "no champion to compare with, so no out-of-time set exists yet: not required of a first model",
        )
    rows = out_of_time_size(version=version, champion=champion)
    capped = " (counted up to the evaluation's limit)" if rows >= OUT_OF_TIME_LIMIT else ""
    return _clause(
        name,
        f"at least {minimum} rows",
        rows,
        rows >= minimum,
        f"{rows} corrections made after both models froze their data{capped}",
    )


def _acceptance_clauses(
    acceptance: dict[str, float],
    candidate: dict[str, Any],
    paired: dict[str, Any] | None,
    champion: ModelVersion | None,
    version: ModelVersion,
) -> list[dict[str, Any]]:
    out = []
    if "min_holdout_accuracy" in acceptance:
        minimum, accuracy = acceptance["min_holdout_accuracy"], candidate.get("accuracy")
        passed = accuracy is not None and accuracy >= minimum
        out.append(
            _clause(
                "minimum holdout accuracy",
                minimum,
                accuracy,
                passed,
                f"holdout accuracy {_num(accuracy)} against a minimum of {minimum:.3f}",
            )
        )
    if "max_ece" in acceptance:
        limit, ece = acceptance["max_ece"], candidate.get("ece")
        passed = ece is not None and ece <= limit
        out.append(_clause("maximum ECE", limit, ece, passed, f"ECE {_num(ece)} against a limit of {limit:.3f}"))
    if "max_regression_points" in acceptance:
        limit = acceptance["max_regression_points"]
        name = "maximum regression against the champion"
        if champion is None or champion.pk == version.pk:
            out.append(_clause(name, limit, None, True, "no champion to regress against"))
        elif paired is None or paired.get("accuracy_difference") is None:
            out.append(_clause(name, limit, None, False, "the champion could not be evaluated on the holdout"))
        else:
            points = paired["accuracy_difference"] * 100
            passed = points >= -limit
            out.append(
                _clause(
                    name,
                    limit,
                    round(points, 3),
                    passed,
                    f"accuracy {points:+.1f} points against champion v{champion.version}; "
                    f"at most {limit:g} points worse allowed",
                )
            )
    return out


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"
