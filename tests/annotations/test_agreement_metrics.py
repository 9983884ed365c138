"""Agreement figures against oracles: scikit-learn's cohen_kappa_score, statsmodels' fleiss_kappa, NLTK.

Krippendorff's alpha: the `krippendorff` package is GPL-3.0-or-later, so it is not a dependency,
even a test-only one. NLTK (Apache-2.0, test-only) is the independent oracle instead:
`nltk.metrics.agreement.AnnotationTask(...).alpha()` with its default binary distance is nominal
alpha, and it treats missing ratings as Krippendorff does (an absent triple; units with fewer than
two values dropped; each unit's disagreement weighted by m_u / (m_u - 1) over n pairable values).
It departs from the definition only where the definition divides by zero, and those cases are
checked separately (test_where_nltk_departs_from_the_definition_our_figure_is_undefined_and_says_why):
- one category among the pairable values (expected disagreement 0): NLTK returns 1 by convention;
- no unit with two values: NLTK divides by zero (ZeroDivisionError).
Alpha is also checked against the textbook example worked by hand in Krippendorff (2011),
"Computing Krippendorff's alpha-reliability" (nominal data with missing values), against statsmodels
through the identity that holds on complete data (alpha = 1 - (1 - Fleiss' kappa) * (nm - 1) / nm for
N items with m ratings each, n = Nm), and against a direct implementation of the definition.

NLTK also checks the kappas where its definitions are ours: `kappa_pairwise` is Cohen's kappa for two
coders who rated every item (so it gets the pair's shared items only), and `pi` is multi-pi (Siegel
and Castellan's K), which is Fleiss' kappa when every item has the same m ratings (coders are
numbered by position within the item: Fleiss' kappa does not depend on who gave which rating). With
one category only NLTK returns 1 where ours is undefined, as for alpha. `multi_kappa` (Davies and
Fleiss) is a different figure and is not used.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from dataclasses import fields, is_dataclass
from itertools import combinations, permutations
from typing import TYPE_CHECKING

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import aggregate_raters
from statsmodels.stats.inter_rater import fleiss_kappa as statsmodels_fleiss_kappa

if TYPE_CHECKING:
    from nltk.metrics.agreement import AnnotationTask

from annotations.agreement_metrics import (
    NO_PAIRABLE_ITEM,
    ONE_CATEGORY,
    Agreement,
    Bootstrap,
    _figure,
    agreement_report,
    fleiss_kappa,
    krippendorff_alpha,
    pairwise_cohen_kappa,
    per_class_agreement,
    reference_agreement,
)

SEEDS = range(40)
EXACT = Bootstrap(n_resamples=0)
TOLERANCE = 1e-9


def random_ratings(seed: int, *, missing: float = 0.25) -> dict[tuple[int, int], str]:
    """(item, rater) -> category: 2-6 raters, 5-60 items, 2-4 categories (one is 'uncertain'), some missing."""
    rng = np.random.default_rng(seed)
    n_raters, n_items, n_categories = rng.integers(2, 7), rng.integers(5, 61), rng.integers(2, 5)
    names = ["benign", "malignant", "uncertain", "other"][:n_categories]
    truth = rng.integers(0, n_categories, n_items)
    ratings = {}
    for item in range(n_items):
        for rater in range(n_raters):
            if rng.random() < missing:
                continue
            honest = rng.random() < 0.7
            ratings[item, rater] = names[truth[item] if honest else rng.integers(0, n_categories)]
    return ratings


def as_list(ratings: dict[tuple[int, int], str]) -> list[tuple[int, int, str]]:
    return [(item, rater, category) for (item, rater), category in ratings.items()]


def oracle(function, *args, **kwargs) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an undefined figure: the oracles warn and return NaN
        return float(function(*args, **kwargs))


def assert_matches(figure: Agreement, expected: float) -> None:
    if math.isnan(expected):
        assert figure.value is None and figure.reason
    else:
        assert figure.value == pytest.approx(expected, abs=TOLERANCE) and figure.reason == ""


def assert_no_nan(value: object) -> None:
    if is_dataclass(value):
        for field in fields(value):
            assert_no_nan(getattr(value, field.name))
    elif isinstance(value, tuple):
        for each in value:
            assert_no_nan(each)
    elif isinstance(value, float):
        assert not math.isnan(value)


def fleiss_oracle(ratings: dict[tuple[int, int], str]) -> tuple[float, int, int, int]:
    """statsmodels' Fleiss kappa over the items with the most common count m (ties: larger m)."""
    by_item: dict[int, list[str]] = {}
    for (item, _), category in ratings.items():
        by_item.setdefault(item, []).append(category)
    counts = Counter(len(v) for v in by_item.values() if len(v) >= 2)
    m = max(counts, key=lambda k: (counts[k], k))
    rows = [v for v in by_item.values() if len(v) == m]
    table, _ = aggregate_raters(np.array(rows))
    return oracle(statsmodels_fleiss_kappa, table, method="fleiss"), m, len(rows), sum(counts.values()) - len(rows)


def alpha_by_definition(ratings: dict[tuple[int, int], str]) -> float:
    """Krippendorff's alpha from the coincidence matrix, built pair by pair."""
    by_item: dict[int, list[str]] = {}
    for (item, _), category in ratings.items():
        by_item.setdefault(item, []).append(category)
    coincidences: Counter[tuple[str, str]] = Counter()
    for values in by_item.values():
        if len(values) >= 2:
            for c, k in permutations(values, 2):
                coincidences[c, k] += 1 / (len(values) - 1)
    marginals: Counter[str] = Counter()
    for (c, _), o in coincidences.items():
        marginals[c] += o
    n = sum(marginals.values())
    observed = sum(o for (c, k), o in coincidences.items() if c != k)
    expected = sum(marginals[c] * marginals[k] for c in marginals for k in marginals if c != k) / (n - 1)
    return 1 - observed / expected if expected else math.nan


def _annotation_task() -> type[AnnotationTask]:
    # Imported when first used: importing nltk costs every test process about 1.7 s at collection.
    from nltk.metrics.agreement import AnnotationTask

    return AnnotationTask


def nltk_task(ratings: dict[tuple[int, int], str]) -> AnnotationTask:
    """NLTK's triples are (coder, item, label); a missing rating is an absent triple."""
    return _annotation_task()(data=[(rater, item, category) for (item, rater), category in ratings.items()])


def pairable_categories(ratings: dict[tuple[int, int], str]) -> set[str]:
    """The categories among the values of units with two or more: alpha is defined when there are two."""
    per_item = Counter(item for item, _ in ratings)
    return {category for (item, _), category in ratings.items() if per_item[item] >= 2}


def assert_alpha_matches_nltk(figure: Agreement, ratings: dict[tuple[int, int], str]) -> None:
    """Where the definition is defined, NLTK's alpha; elsewhere ours is undefined (NLTK's conventions differ)."""
    if len(pairable_categories(ratings)) >= 2:
        assert_matches(figure, nltk_task(ratings).alpha())
    else:
        assert figure.value is None and figure.reason in (ONE_CATEGORY, NO_PAIRABLE_ITEM)


def _pairwise_kappa_equals_scikit_learn_over_the_items_both_rated(seed: int) -> None:
    ratings = random_ratings(seed)
    pairs = pairwise_cohen_kappa(as_list(ratings), bootstrap=EXACT)
    raters = sorted({rater for _, rater in ratings})
    assert [(p.rater_a, p.rater_b) for p in pairs] == list(combinations(raters, 2))
    for pair in pairs:
        shared = sorted({i for i, r in ratings if r == pair.rater_a} & {i for i, r in ratings if r == pair.rater_b})
        assert pair.kappa.n_items == len(shared)
        a = [ratings[i, pair.rater_a] for i in shared]
        b = [ratings[i, pair.rater_b] for i in shared]
        assert_matches(pair.kappa, oracle(cohen_kappa_score, a, b) if shared else math.nan)


def _fleiss_kappa_equals_statsmodels_over_the_items_with_the_common_count(seed: int) -> None:
    ratings = random_ratings(seed)
    expected, m, n_items, left_out = fleiss_oracle(ratings)
    result = fleiss_kappa(as_list(ratings), bootstrap=EXACT)
    assert (result.ratings_per_item, result.kappa.n_items, result.n_items_left_out) == (m, n_items, left_out)
    assert_matches(result.kappa, expected)


def _per_class_fleiss_kappa_equals_statsmodels_on_the_category_against_the_rest(seed: int) -> None:
    ratings = random_ratings(seed)
    for figure in per_class_agreement(as_list(ratings), bootstrap=EXACT):
        binary = {key: str(value == figure.category) for key, value in ratings.items()}
        assert_matches(figure.fleiss_kappa, fleiss_oracle(binary)[0])
        assert_matches(figure.alpha, alpha_by_definition(binary))


def _alpha_on_complete_data_follows_from_statsmodels_fleiss_kappa(seed: int) -> None:
    ratings = random_ratings(seed, missing=0.0)
    fleiss, m, n_items, _ = fleiss_oracle(ratings)
    n = n_items * m
    alpha = krippendorff_alpha(as_list(ratings), bootstrap=EXACT)
    assert alpha.n_items == n_items
    assert_matches(alpha, 1 - (1 - fleiss) * (n - 1) / n)


def _alpha_with_missing_ratings_equals_the_definition(seed: int) -> None:
    ratings = random_ratings(seed, missing=0.4)
    alpha = krippendorff_alpha(as_list(ratings), bootstrap=EXACT)
    assert alpha.n_items == sum(1 for n in Counter(i for i, _ in ratings).values() if n >= 2)
    assert_matches(alpha, alpha_by_definition(ratings))


def _alpha_equals_nltk_with_and_without_missing_ratings(seed: int) -> None:
    for missing in (0.0, 0.25, 0.6):
        ratings = random_ratings(seed, missing=missing)
        assert_alpha_matches_nltk(krippendorff_alpha(as_list(ratings), bootstrap=EXACT), ratings)


def _per_class_alpha_equals_nltk_on_the_category_against_the_rest(seed: int) -> None:
    ratings = random_ratings(seed, missing=0.4)
    for figure in per_class_agreement(as_list(ratings), bootstrap=EXACT):
        binary = {key: str(value == figure.category) for key, value in ratings.items()}
        assert_alpha_matches_nltk(figure.alpha, binary)


def _pairwise_kappa_equals_nltk_over_the_items_both_rated(seed: int) -> None:
    ratings = random_ratings(seed)
    for pair in pairwise_cohen_kappa(as_list(ratings), bootstrap=EXACT):
        a, b = pair.rater_a, pair.rater_b
        shared = {i for i, r in ratings if r == a} & {i for i, r in ratings if r == b}
        if not shared:  # NLTK divides by the number of items; ours says the raters share none
            assert pair.kappa.value is None
            continue
        # kappa_pairwise assumes both coders rated every item of the task: give it the shared ones only.
        task = _annotation_task()(data=[(r, i, ratings[i, r]) for i in shared for r in (a, b)])
        expected = task.kappa_pairwise(a, b)
        if pair.kappa.value is None:  # one category only: NLTK's convention is 1
            assert (pair.kappa.reason, expected) == (ONE_CATEGORY, 1.0)
        else:
            assert_matches(pair.kappa, expected)


def _fleiss_kappa_equals_nltk_multi_pi_on_the_items_with_the_common_count(seed: int) -> None:
    ratings = random_ratings(seed)
    result = fleiss_kappa(as_list(ratings), bootstrap=EXACT)
    by_item: dict[int, list[str]] = {}
    for (item, _), category in ratings.items():
        by_item.setdefault(item, []).append(category)
    m = result.ratings_per_item
    rows = [values for values in by_item.values() if len(values) == m]
    task = _annotation_task()(data=[(k, item, c) for item, values in enumerate(rows) for k, c in enumerate(values)])
    if result.kappa.value is None:
        assert (result.kappa.reason, task.pi()) == (ONE_CATEGORY, 1.0)
    else:
        assert_matches(result.kappa, task.pi())


def test_where_nltk_departs_from_the_definition_our_figure_is_undefined_and_says_why():
    # Krippendorff's alpha is 1 - D_o / D_e; with a single category among the pairable values D_e = 0.
    one_category = {(item, rater): "benign" for item in range(4) for rater in range(3)}
    assert nltk_task(one_category).alpha() == 1
    # A second category on a unit with one value only: still nothing to pair it with.
    lone_other = {**one_category, (4, 0): "malignant"}
    assert nltk_task(lone_other).alpha() == 1
    for ratings in (one_category, lone_other):
        alpha = krippendorff_alpha(as_list(ratings), bootstrap=EXACT)
        assert (alpha.value, alpha.n_items, alpha.reason) == (None, 4, ONE_CATEGORY)
    # No unit with two values: nothing is pairable, n = 0.
    single = {(0, 0): "benign", (1, 1): "malignant", (2, 0): "malignant"}
    with pytest.raises(ZeroDivisionError):
        nltk_task(single).alpha()
    alpha = krippendorff_alpha(as_list(single), bootstrap=EXACT)
    assert (alpha.value, alpha.n_items, alpha.reason) == (None, 0, NO_PAIRABLE_ITEM)
    # Cohen's kappa and Fleiss' kappa with one category: NLTK says 1, the definition 0 / 0.
    pair = _annotation_task()(data=[(r, i, "benign") for i in range(4) for r in (0, 1)])
    assert pair.kappa_pairwise(0, 1) == 1.0 and pair.pi() == 1.0
    report = agreement_report(as_list(one_category), bootstrap=EXACT)
    assert {p.kappa.reason for p in report.pairs} == {ONE_CATEGORY} == {report.fleiss.kappa.reason}
    # Where both are defined they agree, perfect agreement included.
    perfect = {(item, rater): ["benign", "malignant"][item % 2] for item in range(6) for rater in range(3)}
    assert krippendorff_alpha(as_list(perfect), bootstrap=EXACT).value == nltk_task(perfect).alpha() == 1.0


def test_alpha_equals_krippendorffs_worked_example_with_missing_values():
    # Krippendorff (2011), section C: 4 observers, 12 units, values 1-5, "." = missing.
    rows = ["1 2 3 3 2 1 4 1 2 . . .", "1 2 3 3 2 2 4 1 2 5 . 3", ". 3 3 3 2 3 4 2 2 5 1 .", "1 2 3 3 2 4 4 1 2 5 1 ."]
    ratings = [
        (unit, observer, value)
        for observer, row in enumerate(rows)
        for unit, value in enumerate(row.split())
        if value != "."
    ]
    alpha = krippendorff_alpha(ratings, bootstrap=EXACT)
    # By hand: unit 12 has one value and drops out; n = 40 pairable values with marginals
    # n_c = 9, 13, 10, 5, 3; the off-diagonal coincidences sum to 8; so
    # alpha = 1 - (n - 1) * 8 / (n^2 - sum n_c^2) = 1 - 39 * 8 / (1600 - 384) = 0.743.
    assert alpha.n_items == 11
    assert alpha.value == pytest.approx(1 - 39 * 8 / 1216, abs=TOLERANCE)
    assert round(alpha.value, 3) == 0.743
    nltk = _annotation_task()(data=[(observer, unit, value) for unit, observer, value in ratings]).alpha()
    assert alpha.value == pytest.approx(nltk, abs=TOLERANCE)


def _agreement_with_the_reference_is_accuracy_and_scikit_learn_kappa(seed: int) -> None:
    ratings = random_ratings(seed)
    rng = np.random.default_rng(seed + 1000)
    categories = sorted(set(ratings.values())) + ["never used by a rater"]
    items = sorted({i for i, _ in ratings})
    reference = {i: categories[rng.integers(0, len(categories))] for i in items if rng.random() < 0.8}
    for figure in reference_agreement(as_list(ratings), reference, bootstrap=EXACT):
        mine = sorted(i for i, r in ratings if r == figure.rater and i in reference)
        given, gold = [ratings[i, figure.rater] for i in mine], [reference[i] for i in mine]
        agree = sum(g == r for g, r in zip(given, gold, strict=True))
        assert (figure.accuracy.n_items, figure.kappa.n_items, figure.n_agree) == (len(mine), len(mine), agree)
        if mine:
            assert figure.accuracy.value == pytest.approx(agree / len(mine), abs=TOLERANCE)
            assert_matches(figure.kappa, oracle(cohen_kappa_score, given, gold))
        else:
            assert figure.accuracy.value is None and figure.kappa.value is None


@pytest.mark.parametrize("seed", range(10))
def test_no_figure_is_ever_nan(seed):
    ratings = random_ratings(seed, missing=0.5)
    reference = {item: category for (item, _), category in ratings.items()}
    assert_no_nan(agreement_report(as_list(ratings), reference=reference, bootstrap=Bootstrap(n_resamples=50)))


def test_one_category_only_leaves_every_kappa_and_alpha_undefined_and_says_why():
    ratings = [(item, rater, "benign") for item in range(6) for rater in "abc"]
    report = agreement_report(ratings, reference=dict.fromkeys(range(6), "benign"))
    assert math.isnan(oracle(cohen_kappa_score, ["benign"] * 6, ["benign"] * 6))
    table, _ = aggregate_raters(np.zeros((6, 3), dtype=int))
    assert math.isnan(oracle(statsmodels_fleiss_kappa, table))
    undefined = [p.kappa for p in report.pairs] + [report.fleiss.kappa, report.alpha]
    undefined += [report.per_class[0].fleiss_kappa, report.per_class[0].alpha, report.reference[0].kappa]
    for figure in undefined:
        assert (figure.value, figure.low, figure.high, figure.n_items, figure.reason) == (
            None,
            None,
            None,
            6,
            ONE_CATEGORY,
        )
    assert report.reference[0].accuracy.value == 1.0
    assert_no_nan(report)


def test_one_rater_has_no_pair_and_no_item_with_two_ratings():
    ratings = [(item, "alice", "benign" if item % 2 else "malignant") for item in range(8)]
    report = agreement_report(ratings, reference={0: "malignant", 1: "malignant"})
    assert report.pairs == ()
    assert (report.fleiss.ratings_per_item, report.fleiss.n_items_left_out) == (0, 0)
    for figure in (report.fleiss.kappa, report.alpha, report.per_class[0].alpha, report.per_class[1].fleiss_kappa):
        assert (figure.value, figure.n_items, figure.reason) == (None, 0, NO_PAIRABLE_ITEM)
    assert (report.reference[0].accuracy.value, report.reference[0].n_agree) == (0.5, 1)
    assert report.reference[0].kappa.value == pytest.approx(
        oracle(cohen_kappa_score, ["malignant", "benign"], ["malignant", "malignant"])
    )


def test_raters_without_an_item_in_common_have_an_undefined_kappa():
    ratings = [(0, "alice", "benign"), (1, "alice", "malignant"), (2, "bob", "benign"), (3, "bob", "malignant")]
    (pair,) = pairwise_cohen_kappa(ratings)
    assert (pair.kappa.value, pair.kappa.n_items, pair.kappa.reason) == (
        None,
        0,
        "the two raters have no item in common",
    )


def test_perfect_agreement_is_one_with_the_interval_one_to_one():
    categories = ["benign", "malignant", "uncertain"]
    ratings = [(item, rater, categories[item % 3]) for item in range(30) for rater in "abcd"]
    report = agreement_report(ratings, reference={i: categories[i % 3] for i in range(30)})
    assert oracle(cohen_kappa_score, categories * 10, categories * 10) == 1.0
    table, _ = aggregate_raters(np.array([[i % 3] * 4 for i in range(30)]))
    assert oracle(statsmodels_fleiss_kappa, table) == pytest.approx(1.0, abs=TOLERANCE)
    figures = [p.kappa for p in report.pairs] + [report.fleiss.kappa, report.alpha]
    figures += [c.alpha for c in report.per_class] + [c.fleiss_kappa for c in report.per_class]
    figures += [r.kappa for r in report.reference] + [r.accuracy for r in report.reference]
    for figure in figures:
        assert (figure.value, figure.low, figure.high, figure.n_items, figure.reason) == (1.0, 1.0, 1.0, 30, "")
        assert figure.n_resamples == 1000


def test_fleiss_kappa_uses_only_items_with_the_most_common_count_and_says_how_many_were_left_out():
    ratings = [(i, r, "x" if (i + r) % 3 else "y") for i in range(10) for r in range(3)]  # 10 items, 3 ratings
    ratings += [(i, r, "x" if i % 2 else "y") for i in range(10, 14) for r in range(2)]  # 4 items, 2 ratings
    ratings += [(14, 0, "x")]  # one rating: no figure counts it
    result = fleiss_kappa(ratings, bootstrap=EXACT)
    assert (result.ratings_per_item, result.kappa.n_items, result.n_items_left_out) == (3, 10, 4)
    assert krippendorff_alpha(ratings, bootstrap=EXACT).n_items == 14
    tie = [(i, r, "x" if (i + r) % 2 else "y") for i in range(4) for r in range(2 + i % 2)]  # two of 2, two of 3
    assert fleiss_kappa(tie, bootstrap=EXACT).ratings_per_item == 3


def test_bootstrap_is_seeded_and_resamples_the_items():
    ratings = as_list(random_ratings(3))
    first = krippendorff_alpha(ratings, bootstrap=Bootstrap(n_resamples=300, seed=7))
    assert first == krippendorff_alpha(ratings, bootstrap=Bootstrap(n_resamples=300, seed=7))
    other = krippendorff_alpha(ratings, bootstrap=Bootstrap(n_resamples=300, seed=8))
    assert (other.value, other.n_items) == (first.value, first.n_items) and other.low != first.low
    assert first.low < first.value < first.high and first.n_resamples == 300
    narrow = krippendorff_alpha(ratings, bootstrap=Bootstrap(n_resamples=300, seed=7, confidence=0.5))
    assert first.low < narrow.low <= narrow.high < first.high


def test_an_interval_is_withheld_when_most_resamples_leave_the_figure_undefined():
    def defined_only_with_the_first_two_items(weights: np.ndarray) -> float | str:
        return 0.5 if weights[0] and weights[1] else ONE_CATEGORY  # about 42% of resamples

    figure = _figure(defined_only_with_the_first_two_items, 10, Bootstrap(n_resamples=200), empty="")
    assert (figure.value, figure.low, figure.high) == (0.5, None, None)
    assert 0 < figure.n_resamples < 100
    assert figure.reason == f"no interval: the figure is undefined in {200 - figure.n_resamples} of 200 resamples"


def test_a_rater_who_answers_an_item_twice_is_refused():
    with pytest.raises(ValueError, match="more than once"):
        krippendorff_alpha([(1, "alice", "benign"), (1, "alice", "malignant")])


def test_no_ratings_give_empty_undefined_figures():
    report = agreement_report([])
    assert (report.raters, report.pairs, report.per_class, report.reference) == ((), (), (), ())
    assert (report.alpha.value, report.alpha.reason) == (None, NO_PAIRABLE_ITEM)


@pytest.mark.parametrize("bootstrap", [{"n_resamples": -1}, {"confidence": 1.0}, {"confidence": 0.0}])
def test_a_bootstrap_without_meaning_is_refused(bootstrap):
    with pytest.raises(ValueError):
        Bootstrap(**bootstrap)


# One test per check, every seed inside it: 240 parametrized cases cost more in xdist's
# bookkeeping than the checks themselves; a failure names its seed (_each_seed).


def _each_seed(check) -> None:  # type: ignore[no-untyped-def]
    for seed in SEEDS:
        try:
            check(seed)
        except AssertionError as exc:
            raise AssertionError(f"seed {seed}: {exc}") from exc


def test_pairwise_kappa_equals_scikit_learn_over_the_items_both_rated() -> None:
    _each_seed(_pairwise_kappa_equals_scikit_learn_over_the_items_both_rated)


def test_fleiss_kappa_equals_statsmodels_over_the_items_with_the_common_count() -> None:
    _each_seed(_fleiss_kappa_equals_statsmodels_over_the_items_with_the_common_count)


def test_per_class_fleiss_kappa_equals_statsmodels_on_the_category_against_the_rest() -> None:
    _each_seed(_per_class_fleiss_kappa_equals_statsmodels_on_the_category_against_the_rest)


def test_alpha_on_complete_data_follows_from_statsmodels_fleiss_kappa() -> None:
    _each_seed(_alpha_on_complete_data_follows_from_statsmodels_fleiss_kappa)


def test_alpha_with_missing_ratings_equals_the_definition() -> None:
    _each_seed(_alpha_with_missing_ratings_equals_the_definition)


def test_agreement_with_the_reference_is_accuracy_and_scikit_learn_kappa() -> None:
    _each_seed(_agreement_with_the_reference_is_accuracy_and_scikit_learn_kappa)


def test_alpha_equals_nltk_with_and_without_missing_ratings() -> None:
    _each_seed(_alpha_equals_nltk_with_and_without_missing_ratings)


def test_per_class_alpha_equals_nltk_on_the_category_against_the_rest() -> None:
    _each_seed(_per_class_alpha_equals_nltk_on_the_category_against_the_rest)


def test_pairwise_kappa_equals_nltk_over_the_items_both_rated() -> None:
    _each_seed(_pairwise_kappa_equals_nltk_over_the_items_both_rated)


def test_fleiss_kappa_equals_nltk_multi_pi_on_the_items_with_the_common_count() -> None:
    _each_seed(_fleiss_kappa_equals_nltk_multi_pi_on_the_items_with_the_common_count)
