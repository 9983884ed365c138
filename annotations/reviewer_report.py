"""Automation bias per reviewer (issue 8, point 4): do they agree with the model more when they can see it?

Blind review hides the prediction on a share of cards (Dataset.blind_percent). A reviewer's blind
answers are what they decide alone; their answers with the prediction shown are what they decide
with the model's answer in view. This report sets the two side by side, per reviewer, with the
counts behind every figure, for model admins (members) and auditors.

Which reviews count. An *answer* is a reviewer's first answer to a card (a review that supersedes
nothing): a blind one (mode "blind", decision label or uncertain) or a shown one (mode "open":
accept, correct, uncertain). A revision (a review that supersedes another) is counted as a
revision, never as a second answer: a blind answer revised after the reveal stays the blind
figure, and the revision counts toward the revision rate after the reveal. Skips, undos
("withdrawn") and adjudicators' decisions are not answers; skips and undos are counted.

The hidden prediction's label. A blind review stores the prediction it hid (shown_prediction_id)
but not its label: that label lives on models_app's Prediction, which annotations may not import.
It is read exactly from one of two places, and from nowhere else:
  1. the item, when Item.prediction_id still equals the review's shown_prediction_id (the item
     holds that prediction's label, written with it);
  2. the revision made after the reveal, which stored the revealed label (shown_label); the
     revision is refused if the prediction had changed, so it is that same prediction's label.
A blind answer whose item has been re-predicted since and that was not revised is counted as
"prediction changed, not comparable" and left out of the blind figure (guessing from the new
prediction would compare the reviewer with a model they never faced). One with no prediction at
all is counted as "no prediction".

The figures (the pure part is reviewer_figures(), over the counts one reviewer's rows add up to):
  - agreement with the model when blind: blind labels equal to the hidden label / comparable
    blind labels (an "uncertain" has no label: counted, not in this figure);
  - agreement with the model when shown: accept / (accept + correct);
  - accept rate: accept / every shown answer (accept, correct, uncertain): an "uncertain" is a
    refusal to take the model's word, so it lowers this and not the figure above;
  - median time on item, server-measured from the card being served, of blind answers and of
    shown accepts (only answers with a measured time; an undo's re-answer has one too);
  - revision rate after the reveal: blind answers revised / blind answers, and how many of those
    revisions moved to the model's label;
  - the flag (RubberStampRule): "likely rubber-stamping" when the accept rate is at least
    min_accept_rate and the median accept time is under max_time_ratio x the median blind time,
    once the reviewer has at least min_shown_answers shown answers, min_timed_accepts timed
    accepts and min_blind_answers timed blind answers; below any of these it says "not enough
    answers" and which. Without blind answers there is no baseline, so no flag either way.

Cost. Two statements over the dataset's reviews, whatever their number, each returning a row per
reviewer (and kind): one GROUP BY reviewer with conditional counts, reading each review with its item
and with the review that supersedes it (a LEFT JOIN by the index on supersedes_id: no correlated
subquery), and one for the medians (percentile_cont on PostgreSQL; ROW_NUMBER over sorted times on
SQLite). No review becomes a Python object. The page costs 7 statements in all (session, user,
roles, dataset, membership, counts, medians), the same at any size. Measured on the shared 2-core
dev machine (load average 5-9, so the ranges are wide) with 318,000 reviews of 100,000 items by 20
reviewers: PostgreSQL counts 0.9-1.1 s, medians 1.0-1.7 s (its sort spills to disk at the default
work_mem); SQLite counts 2.4-3.6 s, medians 2.6-4.6 s. A first version written with the ORM (a
correlated subquery for the hidden label) took 6.5 s for the counts on PostgreSQL, most of it JIT
compilation set off by the subquery's cost estimate. Well past this size the report wants a stored
summary per reviewer kept by the review services.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.db import connection

from annotations.models import Dataset, Item, Review
from annotations.selectors import dataset_get_for_user
from workflow_site.access import MODEL_READ_ROLES, AnyUser

LIKELY = "likely"
NO_SIGN = "no_sign"
NOT_ENOUGH = "not_enough"


@dataclass(frozen=True)
class RubberStampRule:
    """When a reviewer's accepts look like rubber-stamping; every threshold is a keyword to change."""

    min_accept_rate: float = 0.9  # accepts / shown answers, at least
    max_time_ratio: float = 0.5  # median accept time below this x the median blind time
    min_shown_answers: int = 20  # shown answers (accept, correct, uncertain) before any verdict
    min_timed_accepts: int = 10  # accepts with a measured time behind the accept median
    min_blind_answers: int = 10  # blind answers with a measured time behind the blind median

    @property
    def words(self) -> str:
        return (
            f"accepts at least {self.min_accept_rate:.0%} of shown predictions and takes a median time to "
            f"accept under {self.max_time_ratio:g} x their median time on a blind answer; judged only with "
            f"at least {self.min_shown_answers} shown answers, {self.min_timed_accepts} timed accepts and "
            f"{self.min_blind_answers} timed blind answers"
        )


DEFAULT_RULE = RubberStampRule()


@dataclass(frozen=True)
class ReviewerTallies:
    """What one reviewer's reviews of a dataset add up to (the statements' row); the pure function's input."""

    reviewer_id: int
    username: str
    blind_labelled: int = 0  # first answers, blind, with a label
    blind_uncertain: int = 0  # first answers, blind, "uncertain"
    blind_no_prediction: int = 0  # blind labels given when the item had no prediction at all
    blind_compared: int = 0  # blind labels whose hidden label is known exactly
    blind_agreed: int = 0  # ... and equal to it
    shown_accept: int = 0
    shown_correct: int = 0
    shown_uncertain: int = 0
    shown_no_prediction: int = 0  # open answers to an item without a prediction ("label")
    revised_after_reveal: int = 0  # revisions (not undos) of a blind answer, made with the prediction shown
    revised_to_model: int = 0  # ... that took the model's label instead of a different own answer
    revised_shown: int = 0  # revisions of an answer given with the prediction shown
    withdrawn: int = 0  # undos
    skips: int = 0
    blind_timed: int = 0
    blind_median_ms: float | None = None
    accept_timed: int = 0
    accept_median_ms: float | None = None

    @property
    def blind_answers(self) -> int:
        return self.blind_labelled + self.blind_uncertain

    @property
    def blind_changed(self) -> int:
        """Blind labels whose hidden prediction was replaced before anything recorded its label."""
        return self.blind_labelled - self.blind_no_prediction - self.blind_compared

    @property
    def shown_answers(self) -> int:
        return self.shown_accept + self.shown_correct + self.shown_uncertain

    @property
    def blind_median_text(self) -> str:
        return "—" if self.blind_median_ms is None else _seconds(self.blind_median_ms)

    @property
    def accept_median_text(self) -> str:
        return "—" if self.accept_median_ms is None else _seconds(self.accept_median_ms)


@dataclass(frozen=True)
class Share:
    """count of total, with its value; None when there is nothing to divide by."""

    count: int
    total: int

    @property
    def value(self) -> float | None:
        return self.count / self.total if self.total else None

    @property
    def percent(self) -> float | None:
        return None if self.value is None else round(100 * self.value, 1)


@dataclass(frozen=True)
class Flag:
    status: str  # LIKELY, NO_SIGN or NOT_ENOUGH
    words: str


@dataclass(frozen=True)
class ReviewerFigures:
    tallies: ReviewerTallies
    blind_agreement: Share
    shown_agreement: Share
    accept_rate: Share
    revision_rate: Share  # blind answers revised after the reveal
    revised_to_model: Share  # of those revisions
    time_ratio: float | None  # median accept time / median blind time
    flag: Flag

    @property
    def agreement_gap(self) -> float | None:
        """Shown minus blind agreement, in points: how much more they agree once they see the model."""
        if self.blind_agreement.percent is None or self.shown_agreement.percent is None:
            return None
        return round(self.shown_agreement.percent - self.blind_agreement.percent, 1)


def _seconds(ms: float) -> str:
    return f"{ms / 1000:.1f} s"


def _flag(t: ReviewerTallies, accept_rate: Share, rule: RubberStampRule) -> tuple[Flag, float | None]:
    ratio = None
    if t.accept_median_ms is not None and t.blind_median_ms:
        ratio = t.accept_median_ms / t.blind_median_ms
    missing = [
        f"{have} of {need} {what}"
        for have, need, what in (
            (t.shown_answers, rule.min_shown_answers, "shown answers"),
            (t.accept_timed, rule.min_timed_accepts, "timed accepts"),
            (t.blind_timed, rule.min_blind_answers, "timed blind answers"),
        )
        if have < need
    ]
    if missing:
        return Flag(NOT_ENOUGH, "Not enough answers to judge: " + ", ".join(missing) + "."), ratio
    assert accept_rate.value is not None and t.accept_median_ms is not None and t.blind_median_ms is not None
    fast = t.accept_median_ms < rule.max_time_ratio * t.blind_median_ms
    times = f"median accept {_seconds(t.accept_median_ms)} against {_seconds(t.blind_median_ms)} blind"
    if accept_rate.value >= rule.min_accept_rate and fast:
        return Flag(LIKELY, f"Likely rubber-stamping: accepts {accept_rate.value:.0%}, {times}."), ratio
    why = "accept rate under the threshold" if accept_rate.value < rule.min_accept_rate else "accepts not fast enough"
    return Flag(NO_SIGN, f"No sign of rubber-stamping ({why}): accepts {accept_rate.value:.0%}, {times}."), ratio


def reviewer_figures(tallies: ReviewerTallies, rule: RubberStampRule = DEFAULT_RULE) -> ReviewerFigures:
    """The report's figures for one reviewer, from their tallies (pure: no database)."""
    t = tallies
    accept_rate = Share(t.shown_accept, t.shown_answers)
    flag, ratio = _flag(t, accept_rate, rule)
    return ReviewerFigures(
        tallies=t,
        blind_agreement=Share(t.blind_agreed, t.blind_compared),
        shown_agreement=Share(t.shown_accept, t.shown_accept + t.shown_correct),
        accept_rate=accept_rate,
        revision_rate=Share(t.revised_after_reveal, t.blind_answers),
        revised_to_model=Share(t.revised_to_model, t.revised_after_reveal),
        time_ratio=ratio,
        flag=flag,
    )


@dataclass(frozen=True)
class DatasetReviewerReport:
    dataset: Dataset
    rule: RubberStampRule
    reviewers: tuple[ReviewerFigures, ...] = field(default_factory=tuple)

    @property
    def flagged(self) -> int:
        return sum(1 for r in self.reviewers if r.flag.status == LIKELY)


# Column names of the counts statement, in order: every count of ReviewerTallies (the medians come apart).
_COUNTS = (
    "blind_labelled",
    "blind_uncertain",
    "blind_no_prediction",
    "blind_compared",
    "blind_agreed",
    "shown_accept",
    "shown_correct",
    "shown_uncertain",
    "shown_no_prediction",
    "revised_after_reveal",
    "revised_to_model",
    "revised_shown",
    "withdrawn",
    "skips",
)


def _counts_sql() -> str:
    """The counts statement: one pass over the dataset's reviews, grouped by reviewer (PostgreSQL and SQLite).

    Each review r is read with its item i and with v, the review that supersedes it, if any (a LEFT
    JOIN by the index on supersedes_id). At most one review supersedes a given one: only a reviewer's
    newest answer can be revised or undone, under the item's row lock, so the join adds no rows.
    Revisions are counted on the answer they revise (v), which keeps "revised after the reveal" a
    share of blind answers. `hidden` is the hidden prediction's label, exact or NULL (module docstring).
    """
    quote = connection.ops.quote_name
    review, item = quote(Review._meta.db_table), quote(Item._meta.db_table)
    first = "r.supersedes_id IS NULL"
    blind_label = f"{first} AND r.mode = 'blind' AND r.decision = 'label'"
    hidden = (
        "CASE WHEN r.shown_prediction_id = i.prediction_id THEN i.predicted_label_id"
        " WHEN v.mode = 'revealed' THEN v.shown_label_id END"
    )
    revised = "v.decision IS NOT NULL AND v.decision <> 'withdrawn'"
    blind_revised = f"{first} AND r.mode = 'blind' AND v.mode = 'revealed' AND {revised}"
    filters = {
        "blind_labelled": blind_label,
        "blind_uncertain": f"{first} AND r.mode = 'blind' AND r.decision = 'uncertain'",
        "blind_no_prediction": f"{blind_label} AND r.shown_prediction_id IS NULL",
        "blind_compared": f"{blind_label} AND r.shown_prediction_id IS NOT NULL AND ({hidden}) IS NOT NULL",
        "blind_agreed": f"{blind_label} AND ({hidden}) = r.label_id",
        "shown_accept": f"{first} AND r.mode = 'open' AND r.decision = 'accept'",
        "shown_correct": f"{first} AND r.mode = 'open' AND r.decision = 'correct'",
        "shown_uncertain": f"{first} AND r.mode = 'open' AND r.decision = 'uncertain'",
        "shown_no_prediction": f"{first} AND r.mode = 'open' AND r.decision = 'label'",
        "revised_after_reveal": blind_revised,
        # An accept that replaced an "uncertain" or another label: the reviewer moved to the model's answer.
        "revised_to_model": f"{blind_revised} AND v.decision = 'accept'"
        " AND (r.label_id IS NULL OR r.label_id <> v.label_id)",
        "revised_shown": f"{first} AND r.mode = 'open' AND r.decision <> 'skip' AND {revised}",
        "withdrawn": "r.decision = 'withdrawn'",
        "skips": "r.decision = 'skip'",
    }
    assert tuple(filters) == _COUNTS
    counts = ", ".join(f"COUNT(*) FILTER (WHERE {condition}) AS {name}" for name, condition in filters.items())
    grouped = (
        f"SELECT r.reviewer_id, {counts} FROM {review} r JOIN {item} i ON i.id = r.item_id"
        f" LEFT JOIN {review} v ON v.supersedes_id = r.id"
        " WHERE i.dataset_id = %s AND r.decision <> 'adjudicate' GROUP BY r.reviewer_id"
    )
    # The names are joined to the reviewers' rows once grouped: a handful of rows, not every review.
    user = quote(get_user_model()._meta.db_table)
    names = ", ".join(f"c.{name}" for name in filters)
    return f"SELECT c.reviewer_id, u.username, {names} FROM ({grouped}) c JOIN {user} u ON u.id = c.reviewer_id"


def _counts(dataset_id: int) -> list[tuple[int, str, dict[str, int]]]:
    """(reviewer id, username, their counts) from one statement; the SQL spells Review's modes and decisions."""
    with connection.cursor() as cursor:
        cursor.execute(_counts_sql(), [dataset_id])
        return [(row[0], row[1], dict(zip(_COUNTS, row[2:], strict=True))) for row in cursor.fetchall()]


def _medians_sql() -> str:
    """(reviewer, kind, answers timed, median ms) for blind answers and shown accepts with a measured time.

    PostgreSQL has the median as an ordered-set aggregate (percentile_cont(0.5): the mean of the two
    middle values for an even count, as statistics.median). SQLite has none: there the middle one or
    two rows are picked with ROW_NUMBER and COUNT over each reviewer's sorted times, and averaged.
    """
    quote = connection.ops.quote_name
    review, item = quote(Review._meta.db_table), quote(Item._meta.db_table)
    timed = (
        "SELECT r.reviewer_id AS reviewer_id, CASE WHEN r.mode = 'blind' THEN 'blind' ELSE 'accept' END AS kind,"
        f" r.time_on_item_ms AS t FROM {review} r JOIN {item} i ON i.id = r.item_id"
        " WHERE i.dataset_id = %s AND r.supersedes_id IS NULL AND r.time_on_item_ms IS NOT NULL"
        " AND ((r.mode = 'blind' AND r.decision IN ('label', 'uncertain'))"
        " OR (r.mode = 'open' AND r.decision = 'accept'))"
    )
    if connection.vendor == "postgresql":
        return (
            f"WITH timed AS ({timed}) SELECT reviewer_id, kind, COUNT(*),"
            " percentile_cont(0.5) WITHIN GROUP (ORDER BY t) FROM timed GROUP BY reviewer_id, kind"
        )
    return (
        f"WITH timed AS ({timed}), ranked AS ("
        # One window for both, so SQLite sorts the times once (two windows sorted twice: 20-30% slower).
        " SELECT reviewer_id, kind, t, ROW_NUMBER() OVER w AS rn,"
        " COUNT(*) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS n"
        " FROM timed WINDOW w AS (PARTITION BY reviewer_id, kind ORDER BY t))"
        " SELECT reviewer_id, kind, MAX(n), AVG(t) FROM ranked"
        " WHERE rn = (n + 1) / 2 OR rn = (n + 2) / 2 GROUP BY reviewer_id, kind"
    )


def _medians(dataset_id: int) -> dict[tuple[int, str], tuple[int, float]]:
    """(reviewer id, "blind" or "accept") -> (answers timed, median ms): one statement, a row per pair."""
    with connection.cursor() as cursor:
        cursor.execute(_medians_sql(), [dataset_id])
        return {(reviewer_id, kind): (int(n), float(median)) for reviewer_id, kind, n, median in cursor.fetchall()}


def dataset_reviewer_report_for_user(
    *, user: AnyUser, dataset_id: int, rule: RubberStampRule = DEFAULT_RULE
) -> DatasetReviewerReport:
    """Each reviewer's automation-bias figures in a dataset, for its model admins and auditors.

    The role check comes first (dataset_get_for_user): a forbidden dataset is a 403 whatever it
    holds, a missing one a 404 for auditors. Then two statements over the reviews (module
    docstring). Reviewers are listed by username; `rule` decides the flag.
    """
    dataset = dataset_get_for_user(user=user, pk=dataset_id, roles=MODEL_READ_ROLES)
    counts = _counts(dataset.pk)
    medians = _medians(dataset.pk)
    reviewers = []
    for reviewer_id, username, row in counts:
        blind_timed, blind_median = medians.get((reviewer_id, "blind"), (0, None))
        accept_timed, accept_median = medians.get((reviewer_id, "accept"), (0, None))
        tallies = ReviewerTallies(
            reviewer_id=reviewer_id,
            username=username,
            blind_timed=blind_timed,
            blind_median_ms=blind_median,
            accept_timed=accept_timed,
            accept_median_ms=accept_median,
            **row,
        )
        reviewers.append(reviewer_figures(tallies, rule))
    reviewers.sort(key=lambda r: (r.tallies.username, r.tallies.reviewer_id))
    return DatasetReviewerReport(dataset=dataset, rule=rule, reviewers=tuple(reviewers))
