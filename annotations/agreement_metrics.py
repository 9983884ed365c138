"""Agreement between raters: Cohen's kappa per pair, Fleiss' kappa, Krippendorff's alpha (issue 8).

Plain Python and numpy, no Django: ratings in, small frozen dataclasses out. A later step turns
reviews into ratings (per dataset, per guideline version) and renders the figures.

Input. A rating is `(item key, rater key, category)`; categories are strings, and "uncertain" is
just another category. One rating per (item, rater): the caller passes the answer in force (a
revision supersedes the first answer); a duplicate is a ValueError rather than a silent pick.
Items with a single rating carry no information about agreement and count in no figure.

Formulas (nominal categories throughout):
- Cohen's kappa (1960), for each pair of raters over the items both rated:
  (p_o - p_e) / (1 - p_e), p_e from each rater's own marginals (sklearn's `cohen_kappa_score`).
- Fleiss' kappa (1971) needs the same number m of ratings on every item. m is the most common
  count among items with two or more ratings (a tie goes to the larger m); the items with another
  count are left out, and `FleissKappa` says m and how many were left out. Krippendorff's alpha is
  the figure that uses every item.
- Krippendorff's alpha, nominal: 1 - (n - 1) * (n - sum_c o_cc) / (n^2 - sum_c n_c^2), from the
  coincidence matrix o of the pairable values (Krippendorff 2011, "Computing Krippendorff's
  alpha-reliability"). An item contributes its m_u >= 2 values with weight 1 / (m_u - 1), so
  missing ratings need no special treatment.
- Per class: the category against the rest, i.e. Fleiss' category-specific kappa (Fleiss' kappa on
  the two-category table, same m items) and alpha on the binarised ratings.
- Against a reference label per item (e.g. adjudicated gold): each rater's accuracy and Cohen's
  kappa over their items that have one. Gold derived from consensus includes the rater's own
  answer, so this agreement is optimistic for consensus-derived items.

Bootstrap. Items are the resampling unit because items are what the figures are a sample of: the
ratings of one item are not independent (same case, same difficulty), so resampling ratings would
understate the spread, and resampling raters would change the question. Each figure resamples, with
replacement, the items it is computed on (a pair's shared items, the m-rated items, the pairable
items): every figure is a sum of per-item quantities, so a resample is just a weight per item (how
often it was drawn). Percentile interval; each figure starts its own generator from the seed, so it
does not change when another figure is added.

Undefined figures. A chance-corrected figure divides by the expected disagreement, which is zero when
only one category occurs; then, and when there is no item to compute on, `value` is None and `reason`
says why: never a NaN. The zero test is on whole-number counts, so it is exact. Perfect agreement
over two or more categories is 1. A resample in which the figure is undefined (it drew items of one
category only) does not count; `n_resamples` says how many did, and when fewer than half did, no
interval is given and `reason` says so.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np

Rating = tuple[Hashable, Hashable, str]
# A figure from one weight per item, or the reason it is undefined for these weights.
_Stat = Callable[[np.ndarray], "float | str"]

ONE_CATEGORY = "only one category occurs, so chance agreement is complete and the figure is undefined"
NO_PAIRABLE_ITEM = "no item has two or more ratings"


@dataclass(frozen=True)
class Bootstrap:
    n_resamples: int = 1000
    confidence: float = 0.95  # percentile interval from (1 - c) / 2 to (1 + c) / 2
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n_resamples < 0 or not 0.0 < self.confidence < 1.0:
            raise ValueError("n_resamples must be >= 0 and confidence strictly between 0 and 1")


@dataclass(frozen=True)
class Agreement:
    value: float | None  # None when undefined: `reason` says why
    n_items: int  # the items behind the figure
    low: float | None = None  # bootstrap percentile interval; None when not computed
    high: float | None = None
    n_resamples: int = 0  # resamples in which the figure was defined
    reason: str = ""  # why `value` (or the interval) is missing; empty otherwise


@dataclass(frozen=True)
class PairKappa:
    rater_a: Hashable
    rater_b: Hashable
    kappa: Agreement  # Cohen's kappa over the items both rated


@dataclass(frozen=True)
class FleissKappa:
    kappa: Agreement  # over the items with exactly `ratings_per_item` ratings
    ratings_per_item: int  # m; 0 when no item has two or more ratings
    n_items_left_out: int  # items with two or more ratings, but not m


@dataclass(frozen=True)
class ClassAgreement:
    category: str
    fleiss_kappa: Agreement  # this category against the rest, on Fleiss' m-rated items
    alpha: Agreement  # Krippendorff's alpha on the ratings binarised to this category or not


@dataclass(frozen=True)
class ReferenceAgreement:
    rater: Hashable
    accuracy: Agreement  # share of the rater's items with a reference where they match it
    kappa: Agreement  # Cohen's kappa between the rater and the reference
    n_agree: int


@dataclass(frozen=True)
class AgreementReport:
    raters: tuple[Hashable, ...]  # sorted where the keys compare, else in order of first appearance
    categories: tuple[str, ...]  # sorted
    pairs: tuple[PairKappa, ...]  # every pair of raters, in `raters` order
    fleiss: FleissKappa
    alpha: Agreement
    per_class: tuple[ClassAgreement, ...]
    reference: tuple[ReferenceAgreement, ...]  # empty when no reference was given


@dataclass(frozen=True)
class _Table:
    items: tuple[Hashable, ...]
    raters: tuple[Hashable, ...]
    categories: tuple[str, ...]
    codes: np.ndarray  # items x raters: category index, -1 where the rater did not rate the item

    def counts(self) -> np.ndarray:
        """Items x categories: how many raters gave each category to each item."""
        out = np.zeros((len(self.items), len(self.categories)), dtype=np.int64)
        rows, cols = np.nonzero(self.codes >= 0)
        np.add.at(out, (rows, self.codes[rows, cols]), 1)
        return out


def _ordered(keys: Iterable[Hashable]) -> list[Hashable]:
    """Sorted when the keys compare (user ids, names), else in order of first appearance."""
    keys = list(keys)
    try:
        return sorted(keys)  # type: ignore[type-var]
    except TypeError:
        return keys


def _table(ratings: Iterable[Rating]) -> _Table:
    ratings = list(ratings)
    items = {item: i for i, item in enumerate(dict.fromkeys(r[0] for r in ratings))}
    raters = {rater: i for i, rater in enumerate(_ordered(dict.fromkeys(r[1] for r in ratings)))}
    categories = tuple(sorted({r[2] for r in ratings}))
    index = {c: i for i, c in enumerate(categories)}
    codes = np.full((len(items), len(raters)), -1, dtype=np.int64)
    for item, rater, category in ratings:
        i, r = items[item], raters[rater]
        if codes[i, r] >= 0:
            raise ValueError(f"rater {rater!r} rated item {item!r} more than once; pass the answer in force")
        codes[i, r] = index[category]
    return _Table(tuple(items), tuple(raters), categories, codes)


def _figure(stat: _Stat, n_items: int, bootstrap: Bootstrap, *, empty: str) -> Agreement:
    """The figure on all items, and its percentile interval over resamples of the items."""
    if n_items == 0:
        return Agreement(None, 0, reason=empty)
    value = stat(np.ones(n_items))
    if isinstance(value, str):
        return Agreement(None, n_items, reason=value)
    if bootstrap.n_resamples == 0:
        return Agreement(value, n_items)
    rng = np.random.default_rng(bootstrap.seed)
    draws = []
    for _ in range(bootstrap.n_resamples):
        weights = np.bincount(rng.integers(0, n_items, n_items), minlength=n_items).astype(np.float64)
        drawn = stat(weights)
        if not isinstance(drawn, str):
            draws.append(drawn)
    if 2 * len(draws) < bootstrap.n_resamples:
        reason = f"no interval: the figure is undefined in {bootstrap.n_resamples - len(draws)} of "
        return Agreement(value, n_items, n_resamples=len(draws), reason=reason + f"{bootstrap.n_resamples} resamples")
    tail = 50.0 * (1.0 - bootstrap.confidence)
    low, high = np.percentile(draws, [tail, 100.0 - tail])
    return Agreement(value, n_items, float(low), float(high), len(draws))


def _kappa_stat(x: np.ndarray, y: np.ndarray, n_categories: int) -> _Stat:
    """Cohen's kappa of two aligned code vectors: (n * agree - chance) / (n^2 - chance)."""
    cells = x * n_categories + y

    def stat(w: np.ndarray) -> float | str:
        table = np.bincount(cells, weights=w, minlength=n_categories**2).reshape(n_categories, n_categories)
        n, chance = table.sum(), table.sum(axis=1) @ table.sum(axis=0)
        if n * n == chance:
            return ONE_CATEGORY
        return float((n * np.trace(table) - chance) / (n * n - chance))

    return stat


def _fleiss_stat(counts: np.ndarray, m: int) -> _Stat:
    """Fleiss' kappa of an items x categories table with m ratings on every row."""
    squares = (counts**2).sum(axis=1)

    def stat(w: np.ndarray) -> float | str:
        nm = w.sum() * m
        totals = w @ counts
        if nm * nm == totals @ totals:
            return ONE_CATEGORY
        observed = (w @ squares - nm) / (nm * (m - 1))
        expected = (totals @ totals) / (nm * nm)
        return float((observed - expected) / (1.0 - expected))

    return stat


def _alpha_stat(counts: np.ndarray) -> _Stat:
    """Krippendorff's nominal alpha of an items x categories table, every row with >= 2 values."""
    per_item = counts.sum(axis=1)
    matches = (counts * (counts - 1)).sum(axis=1) / (per_item - 1)  # the item's diagonal of o

    def stat(w: np.ndarray) -> float | str:
        totals = w @ counts
        n = totals.sum()
        if n * n == totals @ totals:
            return ONE_CATEGORY
        return float(1.0 - (n - 1) * (n - w @ matches) / (n * n - totals @ totals))

    return stat


def _one_vs_rest(counts: np.ndarray, category: int) -> np.ndarray:
    return np.stack([counts[:, category], counts.sum(axis=1) - counts[:, category]], axis=1)


def _pairs(table: _Table, bootstrap: Bootstrap) -> tuple[PairKappa, ...]:
    out = []
    for a in range(len(table.raters)):
        for b in range(a + 1, len(table.raters)):
            both = (table.codes[:, a] >= 0) & (table.codes[:, b] >= 0)
            stat = _kappa_stat(table.codes[both, a], table.codes[both, b], len(table.categories))
            kappa = _figure(stat, int(both.sum()), bootstrap, empty="the two raters have no item in common")
            out.append(PairKappa(table.raters[a], table.raters[b], kappa))
    return tuple(out)


def _fleiss_items(counts: np.ndarray) -> tuple[int, np.ndarray, int]:
    """m, the mask of items with exactly m ratings, and how many items with >= 2 ratings are not."""
    per_item = counts.sum(axis=1)
    frequency = Counter(int(k) for k in per_item if k >= 2)
    if not frequency:
        return 0, np.zeros(len(per_item), dtype=bool), 0
    m = max(frequency, key=lambda k: (frequency[k], k))
    return m, per_item == m, sum(frequency.values()) - frequency[m]


def _fleiss(table: _Table, bootstrap: Bootstrap) -> FleissKappa:
    counts = table.counts()
    m, used, left_out = _fleiss_items(counts)
    kappa = _figure(_fleiss_stat(counts[used], m), int(used.sum()), bootstrap, empty=NO_PAIRABLE_ITEM)
    return FleissKappa(kappa, m, left_out)


def _alpha(counts: np.ndarray, bootstrap: Bootstrap) -> Agreement:
    pairable = counts[counts.sum(axis=1) >= 2]
    return _figure(_alpha_stat(pairable), len(pairable), bootstrap, empty=NO_PAIRABLE_ITEM)


def _per_class(table: _Table, bootstrap: Bootstrap) -> tuple[ClassAgreement, ...]:
    counts = table.counts()
    m, used, _ = _fleiss_items(counts)
    out = []
    for c, category in enumerate(table.categories):
        binary = _one_vs_rest(counts, c)
        fleiss = _figure(_fleiss_stat(binary[used], m), int(used.sum()), bootstrap, empty=NO_PAIRABLE_ITEM)
        out.append(ClassAgreement(category, fleiss, _alpha(binary, bootstrap)))
    return tuple(out)


def _reference(
    table: _Table, reference: Mapping[Hashable, str], bootstrap: Bootstrap
) -> tuple[ReferenceAgreement, ...]:
    extra = sorted(set(reference.values()) - set(table.categories))  # codes after the raters' categories
    index = {c: i for i, c in enumerate((*table.categories, *extra))}
    gold = np.array([index[reference[item]] if item in reference else -1 for item in table.items], dtype=np.int64)
    out = []
    for r, rater in enumerate(table.raters):
        both = (table.codes[:, r] >= 0) & (gold >= 0)
        x, y, n = table.codes[both, r], gold[both], int(both.sum())
        agree = (x == y).astype(np.float64)
        empty = "none of the rater's items has a reference label"
        accuracy = _figure(lambda w, agree=agree: float(w @ agree / w.sum()), n, bootstrap, empty=empty)
        kappa = _figure(_kappa_stat(x, y, len(index)), n, bootstrap, empty=empty)
        out.append(ReferenceAgreement(rater, accuracy, kappa, int(agree.sum())))
    return tuple(out)


def pairwise_cohen_kappa(ratings: Iterable[Rating], *, bootstrap: Bootstrap = Bootstrap()) -> tuple[PairKappa, ...]:
    """Cohen's kappa for every pair of raters, over the items both rated."""
    return _pairs(_table(ratings), bootstrap)


def fleiss_kappa(ratings: Iterable[Rating], *, bootstrap: Bootstrap = Bootstrap()) -> FleissKappa:
    """Fleiss' kappa over the items with the most common number (m >= 2) of ratings."""
    return _fleiss(_table(ratings), bootstrap)


def krippendorff_alpha(ratings: Iterable[Rating], *, bootstrap: Bootstrap = Bootstrap()) -> Agreement:
    """Krippendorff's alpha for nominal categories, over every item with two or more ratings."""
    return _alpha(_table(ratings).counts(), bootstrap)


def per_class_agreement(ratings: Iterable[Rating], *, bootstrap: Bootstrap = Bootstrap()) -> tuple[ClassAgreement, ...]:
    """For each category, Fleiss' kappa and Krippendorff's alpha of that category against the rest."""
    return _per_class(_table(ratings), bootstrap)


def reference_agreement(
    ratings: Iterable[Rating], reference: Mapping[Hashable, str], *, bootstrap: Bootstrap = Bootstrap()
) -> tuple[ReferenceAgreement, ...]:
    """Each rater against a reference label per item (item key -> category); other items are ignored."""
    return _reference(_table(ratings), reference, bootstrap)


def agreement_report(
    ratings: Iterable[Rating],
    *,
    reference: Mapping[Hashable, str] | None = None,
    bootstrap: Bootstrap = Bootstrap(),
) -> AgreementReport:
    """Every figure above from one pass over the ratings."""
    table = _table(ratings)
    return AgreementReport(
        raters=table.raters,
        categories=table.categories,
        pairs=_pairs(table, bootstrap),
        fleiss=_fleiss(table, bootstrap),
        alpha=_alpha(table.counts(), bootstrap),
        per_class=_per_class(table, bootstrap),
        reference=_reference(table, reference, bootstrap) if reference else (),
    )
