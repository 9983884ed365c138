"""Agreement between a dataset's reviewers, read from its reviews (issue 8, point 3).

The figures are annotations/agreement_metrics.py's; this module only turns reviews into its ratings,
behind the role check, for the page (agreement_views.py) and the API (agreement_apis.py).

Ratings. For each (item, reviewer) the answer in force is the reviewer's latest review of the item
that is not a skip (a later review supersedes, as everywhere in Loupe; a skip says nothing about the
item, so it is neither a rating nor a withdrawal of an earlier one; an undo withdraws the answer,
and an adjudicator's decision is the reference, not a rating). Its category is the label's name
(an "uncertain" has no label and counts as a category of its own). With a guideline version
chosen, the answers in force made under that version are kept: an answer revised under a later
version counts under the revision's only.

References. Each reviewer is compared twice with the item's gold label as it stands (GoldLabel):
- against gold whatever its origin (imported with the data, derived from one review or from agreeing
  reviews, or decided by an adjudicator), over every answered item that has one. A gold label
  derived from reviews agrees with its reviewers by construction (it may be the reviewer's own
  answer), which makes this figure optimistic; the result counts the reference labels by origin so
  the page can say which it is;
- against adjudicated gold only (origin "adjudication": annotations/adjudication.py, a Review with
  decision "adjudicate" by someone who did not answer the item), over the answered items whose gold
  label an adjudicator decided. This is the independent reference issue 8 asks for, but its items
  are not a random sample: an item goes to adjudication because its answers disagreed or one was
  "uncertain", so the figure describes the hard items and tends to run lower than the first.
Each figure has its items (n) and a bootstrap interval, as every other figure here.

Cost. One statement reads every review of the dataset, only the columns the fold needs (with its
label's name, the reviewer's name and the item's gold label, joined) as tuples, oldest first, and
the answers in force are folded in Python: 10,200 reviews take 42 ms on SQLite and 65 ms on
PostgreSQL (2-core dev machine). Past ~10^5 reviews the read wants DISTINCT ON in SQL or a stored
report. It is not what bounds the page, though: the bootstrap is, as every figure resamples its items
n_resamples times (0.6 s for those 3,400 items x 3 reviewers, 2 classes, 1,000 resamples; about
1.4 s for 10,000 items x 3 reviewers, 3 classes), and the two references add two figures per
reviewer each.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from annotations.agreement_metrics import (
    Agreement,
    AgreementReport,
    Bootstrap,
    Rating,
    ReferenceAgreement,
    agreement_report,
    reference_agreement,
)
from annotations.models import Dataset, GoldLabel, Review
from annotations.selectors import dataset_get_for_user
from workflow_site.access import MODEL_READ_ROLES, AnyUser

NO_OVERLAP = "no item has answers from two reviewers yet"
GOLD_ORIGIN_LABELS = dict(GoldLabel.Origin.choices)
# 1,000 resamples, 95% percentile interval, seed 0: the same figures on every visit.
BOOTSTRAP = Bootstrap()


@dataclass(frozen=True)
class MatrixCell:
    """One cell of the reviewer × reviewer matrix: None on the diagonal."""

    kappa: Agreement | None


@dataclass(frozen=True)
class MatrixRow:
    reviewer_id: int
    reviewer: str
    cells: tuple[MatrixCell, ...]


@dataclass(frozen=True)
class DatasetAgreement:
    dataset: Dataset
    report: AgreementReport  # raters are reviewer ids
    reviewer_names: dict[int, str]  # id -> username, for every rater in the report
    guideline_versions: tuple[str, ...]  # versions of the answers in force, whatever the filter (the menu)
    guideline_version: str | None  # the filter; None for all versions
    answers: int  # answers in force behind the figures
    items_rated: int
    items_overlapping: int  # items with answers from two or more reviewers
    superseded: int  # non-skip reviews replaced by a later one of the same reviewer (all versions)
    skips: int  # skip reviews, never ratings (all versions)
    reference_origins: dict[str, int] = field(default_factory=dict)  # GoldLabel.Origin -> rated items with it
    # Each reviewer against adjudicated gold only (report.reference: gold of any origin); empty when no
    # answered item has been adjudicated.
    reference_adjudicated: tuple[ReferenceAgreement, ...] = ()
    bootstrap: Bootstrap = BOOTSTRAP

    @property
    def no_overlap_reason(self) -> str:
        """Why no figure between reviewers exists, or "" when some item has two answers."""
        return "" if self.items_overlapping else NO_OVERLAP

    @property
    def confidence_percent(self) -> int:
        return round(self.bootstrap.confidence * 100)

    @property
    def reviewers(self) -> list[dict[str, object]]:
        """[{id, username}] in the report's order (the API's list)."""
        return [{"id": r, "username": self.reviewer_names[r]} for r in self.report.raters]  # type: ignore[index]

    @property
    def items_adjudicated(self) -> int:
        """Answered items whose gold label an adjudicator decided: the most any reviewer is compared on."""
        return self.reference_origins.get(GoldLabel.Origin.ADJUDICATION, 0)

    def reference_rows(self) -> tuple[tuple[str, ReferenceAgreement], ...]:
        """(reviewer's name, their agreement with gold of any origin), in the report's order."""
        return tuple((self.reviewer_names[r.rater], r) for r in self.report.reference)  # type: ignore[index]

    def reference_adjudicated_rows(self) -> tuple[tuple[str, ReferenceAgreement], ...]:
        """(reviewer's name, their agreement with adjudicated gold), in the report's order."""
        return tuple((self.reviewer_names[r.rater], r) for r in self.reference_adjudicated)  # type: ignore[index]

    def reference_origin_counts(self) -> tuple[tuple[str, int], ...]:
        """(origin in words, items), for the origins present."""
        return tuple((GOLD_ORIGIN_LABELS[o], n) for o, n in sorted(self.reference_origins.items()) if n)

    def matrix(self) -> tuple[MatrixRow, ...]:
        """Cohen's kappa for each pair, as a symmetric reviewers × reviewers table."""
        raters = self.report.raters
        by_pair = {(p.rater_a, p.rater_b): p.kappa for p in self.report.pairs}
        by_pair |= {(b, a): kappa for (a, b), kappa in by_pair.items()}
        return tuple(
            MatrixRow(
                reviewer_id=int(a),  # type: ignore[call-overload]
                reviewer=self.reviewer_names[a],  # type: ignore[index]
                cells=tuple(MatrixCell(None if a == b else by_pair[(a, b)]) for b in raters),
            )
            for a in raters
        )


def _version_key(version: str) -> tuple[int, int, str]:
    """Numbers in numeric order (2 before 10), then anything else by its text."""
    return (0, int(version), "") if version.isdigit() else (1, 0, version)


def dataset_agreement_for_user(
    *,
    user: AnyUser,
    dataset_id: int,
    guideline_version: str | None = None,
    bootstrap: Bootstrap = BOOTSTRAP,
) -> DatasetAgreement:
    """The agreement figures of a dataset's reviewers, for model admins (members) and auditors.

    The role check comes first (dataset_get_for_user): a forbidden dataset is a 403 whatever it
    holds. `guideline_version` keeps only answers in force made under that version (None or "":
    every version). Reads the reviews in one statement (see the module docstring for its bound).
    """
    dataset = dataset_get_for_user(user=user, pk=dataset_id, roles=MODEL_READ_ROLES)
    rows = (
        Review.objects.filter(item__dataset_id=dataset.pk)
        .order_by("created_at", "pk")
        .values_list(
            "item_id",
            "reviewer_id",
            "reviewer__username",
            "decision",
            "label__name",
            "guideline_version",
            "item__gold_label__label__name",
            "item__gold_label__origin",
        )
    )
    in_force: dict[tuple[int, int], tuple[str, str]] = {}  # (item, reviewer) -> (category, version)
    names: dict[int, str] = {}
    gold: dict[int, tuple[str, str]] = {}  # item -> (label name, origin)
    non_skip = skips = 0
    for item_id, reviewer_id, username, decision, label, version, gold_label, gold_origin in rows:
        if decision == Review.Decision.SKIP:
            skips += 1
            continue
        if gold_label is not None:
            gold[item_id] = (gold_label, gold_origin)
        if decision == Review.Decision.ADJUDICATE:
            continue
        if decision == Review.Decision.WITHDRAWN:
            in_force.pop((item_id, reviewer_id), None)
            continue
        non_skip += 1
        # Oldest first, so the last one stays.
        in_force[(item_id, reviewer_id)] = (label if label is not None else decision, version)
        names[reviewer_id] = username

    versions = tuple(sorted({v for _, v in in_force.values()}, key=_version_key))
    chosen = guideline_version or None
    # Sorted by (item, reviewer): the bootstrap draws items by position, so a fixed order keeps the
    # intervals the same from one visit to the next (and equal to agreement_report on sorted ratings).
    ratings: list[Rating] = sorted(
        (item_id, reviewer_id, category)
        for (item_id, reviewer_id), (category, version) in in_force.items()
        if chosen is None or version == chosen
    )
    per_item = Counter(item_id for item_id, _, _ in ratings)
    reference = {item_id: gold[item_id][0] for item_id in per_item if item_id in gold}
    origins = Counter(gold[item_id][1] for item_id in reference)
    report = agreement_report(ratings, reference=reference, bootstrap=bootstrap)
    adjudicated = {
        item_id: label for item_id, label in reference.items() if gold[item_id][1] == GoldLabel.Origin.ADJUDICATION
    }
    # Same ratings, so the same reviewers in the same order as report.reference.
    by_adjudication = reference_agreement(ratings, adjudicated, bootstrap=bootstrap) if adjudicated else ()
    return DatasetAgreement(
        dataset=dataset,
        report=report,
        reviewer_names={r: names[r] for r in report.raters},  # type: ignore[index]
        guideline_versions=versions,
        guideline_version=chosen,
        answers=len(ratings),
        items_rated=len(per_item),
        items_overlapping=sum(1 for n in per_item.values() if n >= 2),
        superseded=non_skip - len(in_force),
        skips=skips,
        reference_origins=dict(origins),
        reference_adjudicated=by_adjudication,
        bootstrap=bootstrap,
    )
