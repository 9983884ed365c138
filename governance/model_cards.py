"""Documents from the lineage (issue 10, point 8): a model card per version, a datasheet per snapshot.

Both are built from registry facts only, never typed in: the version's fit
record, its training run and triggers, the snapshot's labels and where they
came from, the evaluations stored at training time (overall, per class, per
subgroup of the sensitive features, the paired test against the champion of
the day) and the promotion decisions with their signatures. The sections
follow Mitchell et al. 2019 (model cards) and Gebru et al. 2021 (datasheets).
Each builder returns plain JSON-ready dicts: the page renders them (with a
print stylesheet), the JSON view returns them as they are, so what an auditor
prints and what a program reads are the same facts.

Narrative sections a person must write (intended use, ethical considerations,
why the data was collected, ...) come from governance/narratives.py: the latest
version a model admin signed, with its signatures and their verification, and
the history of versions. Until one is signed they are named as not written yet
rather than invented; a draft is never the document's text.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.db.models import Count, QuerySet

from annotations.models import GoldLabel, ImportBatch
from annotations.queue import STRATEGY_AUDIT_SLICE
from governance.datasheet_labelling import AUDIT_SLICE, datasheet_labelling
from governance.envelope import NO_ENVELOPE, envelope_active
from governance.models import DataAccess, DocumentNarrative, EnvelopeAssessment, PromotionRequest
from governance.narratives import narrative_document
from governance.promotions import model_version_record_hash
from governance.selection_words import NOT_REVIEWED
from models_app.models import DatasetSnapshot, Evaluation, ModelVersion, SnapshotLabel

NOT_WRITTEN = "Not written yet: a model admin adds this narrative."


def model_card(version: ModelVersion) -> dict[str, Any]:
    """The model card of one registered version (Mitchell et al. 2019 sections)."""
    dataset, run, fit = version.dataset, version.training_run, version.fit_info or {}
    evaluations = {e.role: e for e in Evaluation.objects.filter(training_run=run)}
    candidate = evaluations.get(Evaluation.Role.CANDIDATE)
    metrics = candidate.metrics if candidate else {}
    sensitive = list(dataset.features.filter(is_sensitive=True).order_by("position").values_list("name", flat=True))
    narrative = narrative_document(DocumentNarrative.Document.MODEL_CARD, version)
    return {
        "kind": "model_card",
        "model_details": {
            "dataset": dataset.name,
            "version": version.version,
            "stage": version.stage,
            "in_shadow_since": version.shadow_since,
            "algorithm": version.algorithm,
            "algorithm_label": fit.get("label", version.algorithm),
            "hyperparameters": fit.get("params", {}),
            "seed": fit.get("seed"),
            "calibration": fit.get("calibration"),
            "calibration_reason": fit.get("calibration_reason"),
            "trained_on": fit.get("trained_on"),
            "code_version": fit.get("code_version"),
            "library_versions": fit.get("library_versions", {}),
            "artifact_sha256": version.artifact_sha256,
            "created_at": version.created_at,
            "training_run": run.pk,
            # kind as stored (for programs), kind_label in the words every other page uses ("Started by hand").
            "triggers": [
                {"kind": t.kind, "kind_label": t.get_kind_display(), "reason": t.reason, "at": t.created_at}
                for t in run.triggers.order_by("pk")
            ],
        },
        "intended_use": {
            "purpose": dataset.description or NOT_WRITTEN,
            "how_it_is_used": (
                "Its predictions are shown to reviewers of this dataset as a suggestion; a reviewer decides every "
                "label (accept, correct, uncertain), a share of items is served blind or from a random audit "
                "slice, and no prediction becomes a label without a person."
            ),
            "out_of_scope": "Any use without that review step, and any data unlike this dataset's schema.",
        },
        "factors": {
            "sensitive_features": sensitive,
            "inputs": version.feature_names,
            "classes": version.class_names,
        },
        "metrics": {
            "reported": ["accuracy", "balanced_accuracy", "macro_f1", "auroc", "log_loss", "brier", "ece"],
            "why": (
                "Accuracy and balanced accuracy (classes may be imbalanced), macro-F1, AUROC for ranking, and "
                "log loss, Brier and ECE because reviewers read the confidence: a confident wrong model invites "
                "rubber-stamping. Intervals are bootstrap 95% percentile intervals over holdout rows."
            ),
        },
        "evaluation_data": {
            "holdout_rows": candidate.holdout_size if candidate else 0,
            "holdout_sha256": candidate.holdout_hash if candidate else None,
            "description": "The sequestered holdout: labelled at import, never reviewed, never trained on.",
            "class_support": {name: c.get("support") for name, c in (metrics.get("per_class") or {}).items()},
        },
        "training_data": _snapshot_summary(version.snapshot, datasheet_labelling(version.snapshot, agreement=False)),
        "quantitative_analyses": {
            "overall": {k: metrics.get(k) for k in ("accuracy", "accuracy_ci", "balanced_accuracy", "macro_f1")}
            | {k: metrics.get(k) for k in ("auroc", "log_loss", "brier", "ece")},
            "per_class": metrics.get("per_class") or {},
            "subgroups": metrics.get("subgroups") or {},
            "against_the_champion_of_the_day": metrics.get("paired"),
        },
        "ethical_considerations": {
            "facts": _ethical_facts(sensitive, metrics),
            "narrative": narrative["sections"].get("ethical_considerations") or NOT_WRITTEN,
        },
        "caveats": list(fit.get("warnings") or []) + _caveats(metrics),
        "decisions": _decisions(version),
        "change_envelope": _change_envelope(version),
        "narrative": narrative,
    }


def datasheet(snapshot: DatasetSnapshot) -> dict[str, Any]:
    """The datasheet of one frozen training set (Gebru et al. sections)."""
    dataset = snapshot.dataset
    item_ids = SnapshotLabel.objects.filter(snapshot=snapshot).values("item_id")
    batches = (
        ImportBatch.objects.filter(items__in=item_ids)
        .distinct()
        .order_by("pk")
        .values("pk", "file_name", "file_sha256", "rows_imported", "uploaded_at", "purpose")
    )
    features = [
        {"name": f.name, "type": f.dtype, "unit": f.unit, "sensitive": f.is_sensitive, "description": f.description}
        for f in dataset.features.order_by("position")
    ]
    labelling = datasheet_labelling(snapshot)
    return {
        "kind": "datasheet",
        "snapshot": {"id": snapshot.pk, "sha256": snapshot.content_hash, "frozen_at": snapshot.created_at},
        "motivation": dataset.description or NOT_WRITTEN,
        # Its counts are the Labelling section's (below), so the two parts of the page cannot disagree.
        "composition": {"features": features, **_snapshot_summary(snapshot, labelling)},
        "collection": {
            "files": [{**b, "id": b.pop("pk")} for b in batches],
            "note": "Every item keeps its file, line and the file's sha256 (item history pages).",
        },
        # How the labels were made, which came from the random audit slice, and the agreement behind each part.
        "labelling": labelling,
        "uses": {
            "model_versions": list(
                ModelVersion.objects.filter(snapshot=snapshot).order_by("version").values_list("version", flat=True)
            ),
            "holdout": "The holdout is never part of a snapshot; models are judged on it.",
        },
        "maintenance": (
            "Labels change only through reviews, adjudication and label-issue re-review, each an audited event; "
            "a snapshot never changes once frozen (its sha256 covers item ids, row hashes and labels)."
        ),
        "narrative": narrative_document(DocumentNarrative.Document.DATASHEET, snapshot),
    }


def _snapshot_summary(snapshot: DatasetSnapshot, labelling: dict[str, Any]) -> dict[str, Any]:
    """Where the snapshot's labels came from, for the model card's training data and the datasheet's composition.

    Every count is the Labelling section's (governance/datasheet_labelling.py), read from `labelling`, never
    counted again another way: how each label was made as it stood at the freeze, what first put each item in
    front of a reviewer (its first review's selection reason), reviewers and adjudicators apart, the guideline
    versions their answers recorded. The keys are the ones this summary always had, so a program reading them
    keeps working; each now carries the number the Labelling section gives ("definitions" says what it counts).
    """
    made = labelling["labels_by_origin"]
    picked = labelling["picked_by_strategy"]
    return {
        "snapshot_id": snapshot.pk,
        "snapshot_sha256": snapshot.content_hash,
        "label_count": snapshot.label_count,
        "by_class": dict(sorted(_counts(SnapshotLabel.objects.filter(snapshot=snapshot), "label__name").items())),
        "label_origins": dict(made),
        # The random audit slice is the unbiased part: items picked by the model's own uncertainty are not.
        "reviewed_items_picked_by": {code: n for code, n in picked.items() if code != NOT_REVIEWED},
        "from_random_audit_slice": labelling["labels_by_group"][AUDIT_SLICE],
        "items_by_group": labelling["labels_by_group"],
        # Served, answered or not, before the freeze: the slice's labels over this are its response rate.
        "audit_slice_items_served": DataAccess.objects.filter(
            dataset_id=snapshot.dataset_id, served_by=STRATEGY_AUDIT_SLICE, accessed_at__lte=snapshot.created_at
        )
        .values("item_id")
        .distinct()
        .count(),
        "reviewers": labelling["reviewers"],
        "adjudicators": labelling["adjudicators"],
        "guideline_versions": labelling["guideline_versions"],
        "agreement_behind_labels": {
            "consensus_of_several_reviewers": made[GoldLabel.Origin.CONSENSUS],
            "adjudicated_disagreements": made[GoldLabel.Origin.ADJUDICATION],
            "single_review": made[GoldLabel.Origin.REVIEW],
            "imported_unreviewed": made[GoldLabel.Origin.IMPORT],
        },
        # For the page: the codes above in words.
        "group_names": labelling["group_names"],
        "strategy_names": labelling["strategy_names"],
        "definitions": {
            "label_origins": "How each label was made as it stood at the freeze (the review the snapshot recorded "
            "for it), as the datasheet's labelling.how_labels_were_made; agreement_behind_labels says the same.",
            "reviewed_items_picked_by": "Items a reviewer saw before the freeze, by what first put each in front "
            "of one: the selection reason of the item's first review (an answer or a skip; an adjudication is "
            "not a pick), as the datasheet's labelling.picked_by_strategy without not_reviewed. "
            "from_random_audit_slice is its audit_slice count; items_by_group counts every label's item by group, "
            "as labelling.labels_by_group.",
            "audit_slice_items_served": "Items the audit slice served before the freeze, answered or not.",
            "reviewers": labelling["definitions"]["reviewers"],
        },
    }


def _counts(rows: QuerySet[Any], key: str) -> Counter[str]:
    """How many rows have each value of `key`, counted by the database (one GROUP BY, a row per value)."""
    return Counter(dict(rows.values_list(key).annotate(n=Count("pk")).order_by()))


def _ethical_facts(sensitive: list[str], metrics: dict[str, Any]) -> list[str]:
    facts = []
    if not sensitive:
        facts.append("No feature of this dataset is marked sensitive: no subgroup analysis was possible.")
    for feature, groups in (metrics.get("subgroups") or {}).items():
        judged = [v for v, g in groups.items() if g.get("accuracy") is not None]
        hidden = [v for v, g in groups.items() if g.get("accuracy") is None]
        if hidden:
            facts.append(
                f"{feature}: {len(hidden)} group(s) too small to judge on the holdout ({', '.join(map(str, hidden))})."
            )
        if judged:
            low = min(judged, key=lambda v: groups[v]["accuracy"])
            facts.append(f"{feature}: lowest accuracy in group {low} ({groups[low]['accuracy']:.3f}).")
    return facts


def _caveats(metrics: dict[str, Any]) -> list[str]:
    out = []
    paired = metrics.get("paired")
    if paired and paired.get("verdict") == "not distinguishable":
        out.append("Against the champion of its day: " + paired.get("verdict_words", "not distinguishable") + ".")
    if metrics.get("auroc") is None and metrics.get("auroc_reason"):
        out.append(f"AUROC not computed: {metrics['auroc_reason']}.")
    if not metrics.get("n"):
        out.append("No holdout when it was trained: nothing on this card is measured.")
    return out


def _change_envelope(version: ModelVersion) -> dict[str, Any]:
    """The version judged against its dataset's change envelope (governance/envelope.py): each stored check,
    newest first, clause by clause; a substantial change is named as such."""
    active = envelope_active(version.dataset_id)
    checks = EnvelopeAssessment.objects.filter(model_version=version).select_related("envelope_version")
    return {
        "active_envelope_version": active.number if active else None,
        "summary": (
            NO_ENVELOPE
            if active is None and not checks
            else "Not checked yet: a version is checked when its promotion is requested or decided."
            if not checks
            else "Substantial change: outside the change envelope it was last checked against."
            if checks[0].substantial_change
            else "Within the change envelope it was last checked against."
        ),
        "checks": [
            {
                "envelope_version": a.envelope_version.number,
                "checked_at": a.created_at,
                "verdict": "substantial change" if a.substantial_change else "within the envelope",
                "clauses": a.clauses,
            }
            for a in checks
        ],
    }


def _decisions(version: ModelVersion) -> list[dict[str, Any]]:
    """Every promotion or rollback decision about this version, with its signature and whether the record it
    signed is still the record now (a changed evaluation or artifact shows as a mismatch)."""
    current = model_version_record_hash(version)
    out = []
    for request in PromotionRequest.objects.filter(model_version=version).select_related(
        "requested_by", "decided_by", "signature"
    ):
        signature = request.signature
        out.append(
            {
                "request": request.pk,
                "kind": request.kind,
                "status": request.status,
                "requested_by": request.requested_by.get_username(),
                "reason": request.reason,
                "decided_by": request.decided_by.get_username() if request.decided_by else None,
                "decision_reason": request.decision_reason,
                "signature": None
                if signature is None
                else {
                    "printed_name": signature.printed_name,
                    "meaning": signature.meaning,
                    "signed_at": signature.signed_at,
                    "record_hash": signature.record_hash,
                    "matches_the_record_now": signature.record_hash == current,
                },
            }
        )
    return out


__all__ = ["datasheet", "model_card"]
