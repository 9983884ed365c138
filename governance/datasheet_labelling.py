"""The datasheet's Labelling section (issue 10, point 8; Gebru et al. 2021, "Preprocessing/cleaning/labeling").

For the gold labels one snapshot froze, as they stood at the freeze:

- how each was made, by GoldLabel's origins: imported with the data, one
  review, agreeing reviews (consensus of the dataset's overlap k),
  adjudicated;
- what first put its item in front of a reviewer: the selection reason stored
  with the item's first review (answer or skip; an adjudication is not a
  pick). The uniform-random audit slice is the unbiased part; the model-chosen
  strategies (least confidence, margin, entropy, disagreement with a
  candidate, label-issue score) are not; "other" is arrival order before the
  model scored anything (and any reason not recorded); an item nobody reviewed
  before the freeze kept its imported label;
- the reviewers and adjudicators behind them and the guideline versions in
  force (those their answers recorded);
- agreement, separately for audit-slice items and model-chosen items, with n:
  over the group's items with two or more answers in force at the freeze, the
  share whose answers all agreed, Fleiss' kappa and Krippendorff's alpha
  (annotations/agreement_metrics.py, with a bootstrap interval; undefined
  figures say why). Answers in force as everywhere (annotations/consensus.py):
  each reviewer's newest answer, a skip is none, an undo withdraws one,
  "uncertain" is a category of its own, an adjudicator's decision is not a
  rating. Model-chosen items are the hard ones by construction, so their
  agreement tends to run lower: that is the comparison the section is for.

The datasheet's composition and the model card's training data report the same counts from this function
(governance/model_cards.py::_snapshot_summary): an auditor gets one answer to "how many came from the audit slice,
and who labelled them" wherever the documents say it.

"At the freeze": only reviews made up to the snapshot's creation count, and a
label's origin is read from the review the snapshot recorded for it (a gold
label re-derived since then no longer says how the frozen one was made).

Cost: two statements whatever the snapshot's size. One aggregates the labels
by (origin, first pick) in SQL; one reads the reviews of the snapshot's items
up to the freeze (six narrow columns, in item order) for the answers in force,
which the figures need item by item (the same read the agreement page makes).
The bootstrap (DATASHEET_BOOTSTRAP) grows with the items that have two answers:
Fleiss' kappa and alpha together take 0.08 s per 10,000 of them and 0.5 s per
100,000 (2-core dev machine).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import groupby
from typing import Any

from django.db.models import Case, CharField, Count, Exists, F, OuterRef, Subquery, Value, When

from annotations.agreement_metrics import Agreement, Bootstrap, Rating, fleiss_kappa, krippendorff_alpha
from annotations.consensus import AnswerRow, current_answers
from annotations.models import GoldLabel, QueueStrategy, Review
from annotations.queue import STRATEGY_AUDIT_SLICE
from governance.selection_words import NOT_REVIEWED, strategy_names
from models_app.models import DatasetSnapshot, SnapshotLabel

AUDIT_SLICE = "audit_slice"
MODEL_CHOSEN = "model_chosen"
OTHER = "other"
GROUPS = (AUDIT_SLICE, MODEL_CHOSEN, OTHER, NOT_REVIEWED)
# The groups in words, for the pages (the JSON keys stay the codes above).
GROUP_NAMES = {
    AUDIT_SLICE: "Random audit slice",
    MODEL_CHOSEN: "Chosen by the model",
    OTHER: "Other (arrival order)",
    NOT_REVIEWED: "Not reviewed",
}
AGREEMENT_GROUPS = (AUDIT_SLICE, MODEL_CHOSEN, OTHER)
MODEL_STRATEGIES = frozenset(QueueStrategy.values)
# A reviewer's labelled answers (an adjudicator's decision is not an answer that agrees with anyone).
ANSWERS_WITH_A_LABEL = tuple(d for d in Review.LABELLED_DECISIONS if d != Review.Decision.ADJUDICATE)
UNCERTAIN = "uncertain"  # the category of an "uncertain" answer (it carries no label)
# 200 resamples (the agreement page draws 1,000): a datasheet can cover a whole dataset, and the interval is
# there to show how wide the audit slice's small n leaves it; the seed keeps it the same on every visit.
DATASHEET_BOOTSTRAP = Bootstrap(n_resamples=200)


def picked_group(strategy: str | None) -> str:
    """Which group an item belongs to, from the selection reason of its first review (None: never reviewed)."""
    if strategy is None:
        return NOT_REVIEWED
    if strategy == STRATEGY_AUDIT_SLICE:
        return AUDIT_SLICE
    return MODEL_CHOSEN if strategy in MODEL_STRATEGIES else OTHER


@dataclass
class _Group:
    """What the fold gathers for one group of items."""

    items: int = 0
    ratings: list[Rating] = field(default_factory=list)
    overlapping: int = 0  # items with two or more answers in force
    all_agreed: int = 0
    reviewers: set[int] = field(default_factory=set)
    versions: set[str] = field(default_factory=set)


def datasheet_labelling(snapshot: DatasetSnapshot, *, agreement: bool = True) -> dict[str, Any]:
    """The Labelling section of `snapshot`'s datasheet (module docstring); two queries.

    agreement=False leaves the agreement figures (and their bootstrap) out: the model card's training data
    reports the counts only, which must be these same counts (governance/model_cards.py::_snapshot_summary).
    """
    frozen = snapshot.created_at
    labels = SnapshotLabel.objects.filter(snapshot=snapshot)
    before_freeze = Review.objects.filter(item_id=OuterRef("item_id"), created_at__lte=frozen)
    first_pick = Subquery(
        before_freeze.exclude(decision=Review.Decision.ADJUDICATE)
        .order_by("created_at", "pk")
        .values("selection_strategy")[:1],
        output_field=CharField(),
    )
    # Another reviewer's answer with the same label before the freeze: the frozen label was a consensus.
    seconded = Exists(
        before_freeze.filter(label_id=OuterRef("label_id"), decision__in=ANSWERS_WITH_A_LABEL).exclude(
            reviewer_id=OuterRef("review__reviewer_id")
        )
    )
    origin = Case(
        When(review__isnull=True, then=Value(GoldLabel.Origin.IMPORT)),
        When(review__decision=Review.Decision.ADJUDICATE, then=Value(GoldLabel.Origin.ADJUDICATION)),
        # The gold label still rests on the review the snapshot froze: its origin is the one recorded then.
        When(gold_label__review_id=F("review_id"), then=F("gold_label__origin")),
        When(seconded, then=Value(GoldLabel.Origin.CONSENSUS)),
        default=Value(GoldLabel.Origin.REVIEW),
        output_field=CharField(),
    )
    made: dict[str, Counter[str]] = {o: Counter() for o in GoldLabel.Origin.values}
    picked_by: Counter[str] = Counter()
    counted = labels.annotate(how=origin, pick=first_pick).values_list("how", "pick").annotate(n=Count("pk"))
    for how, pick, n in counted.order_by():
        made[how][picked_group(pick)] += n
        picked_by[pick if pick is not None else NOT_REVIEWED] += n

    groups, adjudicators = _fold(
        Review.objects.filter(item_id__in=labels.values("item_id"), created_at__lte=frozen)
        .order_by("item_id", "created_at", "pk")
        .values_list("item_id", "reviewer_id", "decision", "label_id", "selection_strategy", "guideline_version")
    )
    reviewers = set().union(*(g.reviewers for g in groups.values()))
    out: dict[str, Any] = {
        "label_count": snapshot.label_count,
        "how_labels_were_made": [
            {
                "origin": value,
                "meaning": GoldLabel.Origin(value).label,
                "labels": sum(made[value].values()),
                **{group: made[value][group] for group in GROUPS},
            }
            for value in GoldLabel.Origin.values
        ],
        "labels_by_group": {group: sum(made[o][group] for o in made) for group in GROUPS},
        "labels_by_origin": {origin: sum(made[origin].values()) for origin in GoldLabel.Origin.values},
        # By code, the items never reviewed last.
        "picked_by_strategy": dict(sorted(picked_by.items(), key=lambda kv: (kv[0] == NOT_REVIEWED, kv[0]))),
        # People with an answer in force at the freeze; adjudicators apart (a decision is not an answer).
        "reviewers": len(reviewers),
        "adjudicators": len(adjudicators),
        "guideline_versions": _versions(set().union(*(g.versions for g in groups.values()))),
        # The codes above in words, for a page: the JSON's keys stay the codes.
        "group_names": dict(GROUP_NAMES),
        "strategy_names": strategy_names(sorted(picked_by)),
        "model_strategy_names": strategy_names(sorted(MODEL_STRATEGIES)),
        "definitions": {
            "group": "What first put the item in front of a reviewer: the selection reason stored with its first "
            "review before the freeze (an answer or a skip; an adjudication is not a pick). audit_slice: the "
            "uniform-random slice (unbiased by the model); model_chosen: " + ", ".join(sorted(MODEL_STRATEGIES)) + "; "
            "other: arrival order before the model scored the items; not_reviewed: no review before the freeze "
            "(the imported label).",
            "reviewers": "Reviewers: people with an answer in force at the freeze (each reviewer's newest answer; "
            "a skip or an undone answer is none). Adjudicators: people who decided a disagreement before the "
            "freeze, counted apart.",
        },
    }
    if agreement:
        out["agreement"] = {group: _agreement(groups[group]) for group in AGREEMENT_GROUPS}
        out["interval_percent"] = round(100 * DATASHEET_BOOTSTRAP.confidence)
        out["definitions"]["agreement"] = (
            "Over the group's items with two or more answers in force at the freeze: the share whose answers all "
            "agreed, Fleiss' kappa (items with the most common number m of answers) and Krippendorff's alpha "
            f"(nominal), each with its n and a {DATASHEET_BOOTSTRAP.n_resamples}-resample bootstrap "
            f"{DATASHEET_BOOTSTRAP.confidence:.0%} interval over items."
        )
    return out


def _fold(rows: Iterable[tuple[int, int, str, int | None, str, str]]) -> tuple[dict[str, _Group], set[int]]:
    """The answers in force per item (rows in item order, oldest first), gathered by the item's group."""
    groups = {group: _Group() for group in GROUPS}
    adjudicators: set[int] = set()
    for item_id, item_rows in groupby(rows, key=lambda row: row[0]):
        reviews = list(item_rows)
        picks = [strategy for _, _, decision, _, strategy, _ in reviews if decision != Review.Decision.ADJUDICATE]
        group = groups[picked_group(picks[0] if picks else None)]
        adjudicators.update(r[1] for r in reviews if r[2] == Review.Decision.ADJUDICATE)
        answers = current_answers(
            AnswerRow(reviewer_id, decision, label_id) for _, reviewer_id, decision, label_id, _, _ in reviews
        )
        group.reviewers.update(answers)
        group.versions.update(
            version for _, reviewer, decision, _, _, version in reviews if decision != Review.Decision.SKIP
        )
        categories = {
            reviewer: UNCERTAIN if answer.label_id is None else str(answer.label_id)
            for reviewer, answer in answers.items()
        }
        group.ratings.extend((item_id, reviewer, category) for reviewer, category in sorted(categories.items()))
        if len(categories) >= 2:
            group.overlapping += 1
            group.all_agreed += len(set(categories.values())) == 1
    for group in groups.values():
        group.items = len({rating[0] for rating in group.ratings})
    return groups, adjudicators


def _agreement(group: _Group) -> dict[str, Any]:
    fleiss = fleiss_kappa(group.ratings, bootstrap=DATASHEET_BOOTSTRAP)
    return {
        "items_answered": group.items,
        "items_with_two_or_more_answers": group.overlapping,
        "items_all_agreed": group.all_agreed,
        "share_all_agreed": group.all_agreed / group.overlapping if group.overlapping else None,
        "fleiss_kappa": {
            **_figure(fleiss.kappa),
            "answers_per_item": fleiss.ratings_per_item,
            "items_left_out": fleiss.n_items_left_out,
        },
        "krippendorff_alpha": _figure(krippendorff_alpha(group.ratings, bootstrap=DATASHEET_BOOTSTRAP)),
        "reviewers": len(group.reviewers),
        "guideline_versions": _versions(group.versions),
    }


def _figure(figure: Agreement) -> dict[str, Any]:
    return {"value": figure.value, "n": figure.n_items, "low": figure.low, "high": figure.high, "reason": figure.reason}


def _versions(versions: set[str]) -> list[str]:
    """Numbers in numeric order (2 before 10), then anything else by its text; a blank one is no version."""
    return sorted(versions - {""}, key=lambda v: (0, int(v), "") if v.isdigit() else (1, 0, v))


__all__ = ["AUDIT_SLICE", "DATASHEET_BOOTSTRAP", "GROUP_NAMES", "MODEL_CHOSEN", "datasheet_labelling", "picked_group"]
