"""models_app.ml.evaluation and .paired against independent oracles (scikit-learn, statsmodels, hand work)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    brier_score_loss,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_recall_fscore_support,
    roc_auc_score,
)
from statsmodels.stats.contingency_tables import mcnemar

from models_app.ml.evaluation import evaluate
from models_app.ml.paired import compare_paired, minimum_detectable_effect

TOL = 1e-9
# Deliberately not in sorted order: every oracle must be told the model's column order.
CLASSES = ["zebra", "apple", "mango"]


def _holdout(n: int, k: int, *, seed: int, signal: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    """Class indices and probabilities from a model that has learned something, but not everything."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), truth] += signal
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return truth, proba


def _labels(truth: np.ndarray, names: list[str]) -> list[str]:
    return [names[i] for i in truth]


def _sorted_columns(proba: np.ndarray, names: list[str]) -> tuple[np.ndarray, list[str]]:
    """log_loss reads columns in sorted label order."""
    order = sorted(range(len(names)), key=lambda i: names[i])
    return proba[:, order], [names[i] for i in order]


def _as_json(result: dict) -> dict:
    return json.loads(json.dumps(result, allow_nan=False))


# --- evaluate -----------------------------------------------------------------------------------


def test_multiclass_point_metrics_match_scikit_learn():
    truth, proba = _holdout(400, 3, seed=1)
    y = _labels(truth, CLASSES)
    predicted = _labels(proba.argmax(axis=1), CLASSES)
    result = evaluate(y, proba, CLASSES, n_boot=200, seed=0)

    assert result["n"] == 400 and result["classes"] == CLASSES
    assert result["accuracy"] == pytest.approx(accuracy_score(y, predicted), abs=TOL)
    assert result["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, predicted), abs=TOL)
    assert result["macro_f1"] == pytest.approx(f1_score(y, predicted, average="macro"), abs=TOL)
    # Both oracles read probability columns in sorted label order.
    sorted_proba, sorted_names = _sorted_columns(proba, CLASSES)
    expected_auroc = roc_auc_score(y, sorted_proba, multi_class="ovr", average="macro", labels=sorted_names)
    assert result["auroc"] == pytest.approx(expected_auroc, abs=TOL) and result["auroc_reason"] is None
    assert result["log_loss"] == pytest.approx(log_loss(y, sorted_proba, labels=sorted_names), abs=TOL)
    onehot = np.eye(3)[truth]
    assert result["brier"] == pytest.approx(np.mean(np.sum((proba - onehot) ** 2, axis=1)), abs=TOL)
    assert result["brier_positive"] is None
    assert result["confusion_matrix"] == confusion_matrix(y, predicted, labels=CLASSES).tolist()


def test_per_class_precision_recall_f1_and_one_vs_rest_auroc_match_scikit_learn():
    truth, proba = _holdout(300, 3, seed=2)
    y = _labels(truth, CLASSES)
    predicted = _labels(proba.argmax(axis=1), CLASSES)
    precision, recall, f1, support = precision_recall_fscore_support(y, predicted, labels=CLASSES)
    per_class = evaluate(y, proba, CLASSES, n_boot=100, seed=0)["per_class"]

    assert list(per_class) == CLASSES
    for i, name in enumerate(CLASSES):
        assert per_class[name]["precision"] == pytest.approx(precision[i], abs=TOL)
        assert per_class[name]["recall"] == pytest.approx(recall[i], abs=TOL)
        assert per_class[name]["f1"] == pytest.approx(f1[i], abs=TOL)
        assert per_class[name]["support"] == support[i]
        assert per_class[name]["auroc"] == pytest.approx(roc_auc_score(truth == i, proba[:, i]), abs=TOL)


def test_binary_auroc_is_of_the_second_class_and_brier_positive_matches_scikit_learn():
    names = ["benign", "malignant"]
    truth, proba = _holdout(250, 2, seed=3, signal=1.0)
    # Ties in the scores: AUROC counts a tied pair as half, as scikit-learn does.
    proba = np.round(proba, 1)
    proba[:, 0] = 1 - proba[:, 1]
    y = _labels(truth, names)
    result = evaluate(y, proba, names, n_boot=100, seed=0)

    assert result["auroc"] == pytest.approx(roc_auc_score(truth == 1, proba[:, 1]), abs=TOL)
    assert result["brier_positive"] == pytest.approx(brier_score_loss(truth == 1, proba[:, 1]), abs=TOL)
    assert result["log_loss"] == pytest.approx(log_loss(y, proba, labels=names), abs=TOL)


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
def test_auroc_is_none_with_a_reason_when_a_class_has_no_rows():
    truth, proba = _holdout(120, 3, seed=4)
    keep = truth != 2  # no "mango" in the labels
    y = _labels(truth[keep], CLASSES)
    predicted = _labels(proba[keep].argmax(axis=1), CLASSES)
    result = evaluate(y, proba[keep], CLASSES, n_boot=100, seed=0)

    assert result["auroc"] is None and "'mango'" in result["auroc_reason"]
    assert result["per_class"]["mango"]["recall"] is None and result["per_class"]["mango"]["auroc"] is None
    assert result["per_class"]["zebra"]["auroc"] == pytest.approx(roc_auc_score(truth[keep] == 0, proba[keep, 0]))
    # Balanced accuracy averages over the classes that are present, as scikit-learn's does.
    assert result["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, predicted), abs=TOL)


def test_macro_f1_skips_a_class_neither_seen_nor_predicted_as_scikit_learn_does():
    truth = np.array([0, 0, 1, 1, 1, 0])
    proba = np.array(
        [[0.9, 0.05, 0.05], [0.2, 0.7, 0.1], [0.1, 0.8, 0.1], [0.3, 0.6, 0.1], [0.6, 0.3, 0.1], [0.8, 0.1, 0.1]]
    )
    y = _labels(truth, CLASSES)
    predicted = _labels(proba.argmax(axis=1), CLASSES)
    result = evaluate(y, proba, CLASSES, n_boot=100, seed=0)

    assert result["macro_f1"] == pytest.approx(f1_score(y, predicted, average="macro"), abs=TOL)
    assert result["per_class"]["mango"] == {
        "support": 0,
        "predicted": 0,
        "precision": None,
        "recall": None,
        "f1": None,
        "auroc": None,
    }


def test_ece_and_reliability_curve_match_a_hand_worked_case():
    names = ["no", "yes"]
    # Top-class confidences 0.95 (right), 0.95 (wrong), 0.65 (right), 0.62 (right), 0.55 (wrong), 1.0 (right).
    proba = np.array([[0.05, 0.95], [0.05, 0.95], [0.35, 0.65], [0.62, 0.38], [0.55, 0.45], [0.0, 1.0]])
    y = ["yes", "no", "yes", "no", "yes", "yes"]
    result = evaluate(y, proba, names, n_boot=100, seed=0)

    # Bin [0.9, 1]: 0.95, 0.95, 1.0 -> confidence 0.9666…, accuracy 2/3; bin [0.6, 0.7): 0.65, 0.62 ->
    # 0.635, 1; bin [0.5, 0.6): 0.55 -> 0.55, 0. ECE = 3/6·|2/3 − 2.9/3| + 2/6·0.365 + 1/6·0.55.
    expected = 3 / 6 * abs(2 / 3 - 2.9 / 3) + 2 / 6 * 0.365 + 1 / 6 * 0.55
    assert result["ece"] == pytest.approx(expected, abs=TOL)
    assert result["ece_bins"] == 10 and len(result["reliability"]) == 10
    by_lower = {round(b["lower"], 1): b for b in result["reliability"]}
    assert by_lower[0.9]["count"] == 3 and by_lower[0.9]["accuracy"] == pytest.approx(2 / 3, abs=TOL)
    assert by_lower[0.9]["mean_confidence"] == pytest.approx(2.9 / 3, abs=TOL)
    assert by_lower[0.6]["count"] == 2 and by_lower[0.6]["mean_confidence"] == pytest.approx(0.635, abs=TOL)
    assert by_lower[0.5]["count"] == 1 and by_lower[0.5]["accuracy"] == 0.0
    assert by_lower[0.5]["mean_confidence"] == pytest.approx(0.55, abs=TOL)
    assert by_lower[0.0] == {"lower": 0.0, "upper": 0.1, "count": 0, "mean_confidence": None, "accuracy": None}


def test_all_correct_predictions_give_accuracy_one_with_a_degenerate_interval_and_ece_of_underconfidence():
    truth, proba = _holdout(80, 3, seed=5)
    proba = 0.2 / 2 + 0.7 * np.eye(3)[truth]  # 0.8 on the true class, 0.1 on the others
    result = evaluate(_labels(truth, CLASSES), proba, CLASSES, n_boot=200, seed=0)

    assert result["accuracy"] == 1.0 and result["accuracy_ci"] == [1.0, 1.0]
    assert result["balanced_accuracy"] == 1.0 and result["macro_f1"] == 1.0 and result["auroc"] == 1.0
    assert result["ece"] == pytest.approx(0.2, abs=TOL)


def test_one_class_present_still_evaluates_and_says_why_auroc_is_missing():
    names = ["negative", "positive"]
    proba = np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.8, 0.2]])
    y = ["negative"] * 4
    result = _as_json(evaluate(y, proba, names, n_boot=100, seed=0))

    assert result["accuracy"] == pytest.approx(0.75, abs=TOL)
    assert result["balanced_accuracy"] == pytest.approx(0.75, abs=TOL)
    assert result["auroc"] is None and "'positive'" in result["auroc_reason"]
    assert result["log_loss"] == pytest.approx(log_loss(y, proba, labels=names), abs=TOL)


def test_subgroups_match_scikit_learn_per_group_and_small_groups_are_suppressed():
    truth, proba = _holdout(300, 3, seed=6)
    y = np.array(_labels(truth, CLASSES))
    predicted = np.array(_labels(proba.argmax(axis=1), CLASSES))
    rng = np.random.default_rng(0)
    sex = rng.choice(np.array(["F", "M", "X"], dtype=object), 300, p=[0.55, 0.4, 0.05])
    sex[:7] = None  # missing values form a group of their own
    result = evaluate(y, proba, CLASSES, groups={"sex": sex}, min_group_size=30, n_boot=500, seed=0)
    groups = result["subgroups"]["sex"]

    assert set(groups) == {"F", "M", "X", "(missing)"}
    for value in ("F", "M"):
        mask = sex == value
        entry = groups[value]
        assert entry["n"] == mask.sum() and entry["reason"] is None
        assert entry["accuracy"] == pytest.approx(accuracy_score(y[mask], predicted[mask]), abs=TOL)
        assert entry["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y[mask], predicted[mask]), abs=TOL)
        low, high = entry["accuracy_ci"]
        assert 0 <= low <= entry["accuracy"] <= high <= 1 and high - low > 0.05
    for value, size in (("X", int((sex == "X").sum())), ("(missing)", 7)):
        entry = groups[value]
        assert entry["n"] == size < 30
        assert entry["accuracy"] is None and entry["accuracy_ci"] is None and entry["balanced_accuracy"] is None
        assert entry["reason"] == "fewer than 30 rows"


def test_a_subgroup_interval_does_not_depend_on_the_other_features_evaluated():
    truth, proba = _holdout(200, 3, seed=7)
    y = _labels(truth, CLASSES)
    rng = np.random.default_rng(1)
    sex = rng.choice(["F", "M"], 200)
    age = rng.choice(["<40", "40-65", ">65"], 200)
    alone = evaluate(y, proba, CLASSES, groups={"sex": sex}, min_group_size=20, n_boot=300, seed=3)
    both = evaluate(y, proba, CLASSES, groups={"age": age, "sex": sex}, min_group_size=20, n_boot=300, seed=3)

    assert both["subgroups"]["sex"] == alone["subgroups"]["sex"]


def test_zero_rows_give_every_key_with_no_figures_and_empty_subgroups():
    result = _as_json(evaluate([], np.zeros((0, 3)), CLASSES, groups={"sex": []}, n_boot=100, seed=0))
    real = evaluate(*_holdout_labels(50), CLASSES, n_boot=100, seed=0)

    assert set(result) == set(real)
    assert result["n"] == 0 and result["accuracy"] is None and result["ece"] is None
    assert result["auroc_reason"] == "no labelled rows"
    assert result["subgroups"] == {"sex": {}}
    assert result["confusion_matrix"] == [[0, 0, 0]] * 3


def _holdout_labels(n: int) -> tuple[list[str], np.ndarray]:
    truth, proba = _holdout(n, 3, seed=8)
    return _labels(truth, CLASSES), proba


def test_evaluation_is_json_and_the_same_for_the_same_seed():
    y, proba = _holdout_labels(150)
    groups = {"site": np.random.default_rng(2).choice(["a", "b"], 150)}
    first = evaluate(y, proba, CLASSES, groups=groups, min_group_size=10, n_boot=300, seed=11)
    again = evaluate(y, proba, CLASSES, groups=groups, min_group_size=10, n_boot=300, seed=11)
    other = evaluate(y, proba, CLASSES, groups=groups, min_group_size=10, n_boot=300, seed=12)

    assert _as_json(first) == first == again
    assert first["accuracy_ci"] != other["accuracy_ci"]
    assert (first["n_bootstrap"], first["seed"], first["interval_level"]) == (300, 11, 0.95)


@pytest.mark.parametrize(
    ("y", "proba", "groups", "message"),
    [
        (["zebra", "pear"], np.full((2, 3), 1 / 3), None, "y_true row 1 is 'pear'"),
        (["zebra"], np.full((1, 2), 0.5), None, "proba has shape (1, 2); expected (1, 3)"),
        (["zebra", "apple"], np.array([[1 / 3] * 3, [0.5, 0.4, 0.0]]), None, "proba row 1 is not a probability"),
        (["zebra"], np.array([[np.nan, 0.5, 0.5]]), None, "proba row 0"),
        (["zebra", "apple"], np.full((2, 3), 1 / 3), {"sex": ["F"]}, "groups['sex'] has 1 values for 2 rows"),
    ],
)
def test_bad_input_is_refused_naming_what_and_where(y, proba, groups, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        evaluate(y, proba, CLASSES, groups=groups, n_boot=10, seed=0)


# --- compare_paired -----------------------------------------------------------------------------


def _paired(*, both_right: int, champion_only: int, candidate_only: int, both_wrong: int):
    """Two binary models with exactly these agreement counts; the probabilities vary so log loss is not trivial."""
    names = ["no", "yes"]
    kinds = [(1, 1)] * both_right + [(1, 0)] * champion_only + [(0, 1)] * candidate_only + [(0, 0)] * both_wrong
    n = len(kinds)
    rng = np.random.default_rng(n)
    truth = rng.integers(0, 2, n)
    confidence = rng.uniform(0.55, 0.95, size=(n, 2))

    def proba(model: int) -> np.ndarray:
        right = np.array([kind[model] for kind in kinds], dtype=bool)
        predicted = np.where(right, truth, 1 - truth)
        p_yes = np.where(predicted == 1, confidence[:, model], 1 - confidence[:, model])
        return np.column_stack([1 - p_yes, p_yes])

    return _labels(truth, names), proba(0), proba(1), names


@pytest.mark.parametrize(("champion_only", "candidate_only"), [(5, 6), (0, 7), (12, 3), (20, 40), (1, 0)])
def test_mcnemar_p_value_matches_statsmodels_exact_test(champion_only, candidate_only):
    y, champion, candidate, names = _paired(
        both_right=100, champion_only=champion_only, candidate_only=candidate_only, both_wrong=9
    )
    result = compare_paired(y, champion, candidate, names, n_boot=200, seed=0)
    table = [[100, champion_only], [candidate_only, 9]]

    assert result["mcnemar_p"] == pytest.approx(mcnemar(table, exact=True).pvalue, abs=TOL)
    assert (result["champion_only_right"], result["candidate_only_right"]) == (champion_only, candidate_only)
    assert result["net_rows"] == candidate_only - champion_only


def test_differences_match_scikit_learn_accuracy_and_log_loss():
    y, champion, candidate, names = _paired(both_right=150, champion_only=8, candidate_only=14, both_wrong=28)
    result = compare_paired(y, champion, candidate, names, n_boot=300, seed=0)

    def accuracy(proba: np.ndarray) -> float:
        return accuracy_score(y, [names[i] for i in proba.argmax(axis=1)])

    assert result["accuracy_difference"] == pytest.approx(accuracy(candidate) - accuracy(champion), abs=TOL)
    expected_loss = log_loss(y, candidate, labels=names) - log_loss(y, champion, labels=names)
    assert result["log_loss_difference"] == pytest.approx(expected_loss, abs=TOL)
    assert result["log_loss_champion"] == pytest.approx(log_loss(y, champion, labels=names), abs=TOL)
    low, high = result["log_loss_difference_ci"]
    assert low <= result["log_loss_difference"] <= high


def test_the_issues_one_row_net_example_reads_as_not_distinguishable():
    # 170 holdout rows, the candidate right on 6 rows the champion missed and wrong on 5 it got: +0.006.
    y, champion, candidate, names = _paired(both_right=154, champion_only=5, candidate_only=6, both_wrong=5)
    result = _as_json(compare_paired(y, champion, candidate, names, n_boot=2000, seed=0))

    assert result["accuracy_difference"] == pytest.approx(1 / 170, abs=TOL)
    assert result["mcnemar_p"] == 1.0
    low, high = result["accuracy_difference_ci"]
    assert -0.06 < low < 0 < high < 0.06
    assert result["verdict"] == "not distinguishable"
    mde = result["minimum_detectable_effect"]
    assert 0.03 < mde < 0.08
    assert result["verdict_words"] == (
        f"not distinguishable on 170 rows (the smallest difference this holdout could detect is about "
        f"{mde * 100:.1f} points)"
    )


def test_models_that_agree_on_every_row_are_not_distinguishable_with_p_one():
    y, champion, _, names = _paired(both_right=90, champion_only=0, candidate_only=0, both_wrong=10)
    result = compare_paired(y, champion, champion.copy(), names, n_boot=300, seed=0)

    assert result["mcnemar_p"] == 1.0 and result["discordance_rate"] == 0.0
    assert result["accuracy_difference_ci"] == [0.0, 0.0] and result["log_loss_difference_ci"] == [0.0, 0.0]
    assert result["verdict"] == "not distinguishable"
    # Agreement on 100 rows is not evidence that a small difference would have shown: the MDE stays finite.
    assert 0.05 < result["minimum_detectable_effect"] < 0.2
    assert result["verdict_words"].startswith("not distinguishable on 100 rows (the smallest difference")


def test_a_clearly_better_candidate_is_better_and_the_same_pair_reversed_is_worse():
    y, champion, candidate, names = _paired(both_right=700, champion_only=10, candidate_only=60, both_wrong=230)
    better = compare_paired(y, champion, candidate, names, n_boot=1000, seed=0)
    worse = compare_paired(y, candidate, champion, names, n_boot=1000, seed=0)

    assert better["verdict"] == "better" and better["accuracy_difference_ci"][0] > 0
    assert better["verdict_words"].startswith("better: +5.0 points of accuracy on 1000 rows")
    assert worse["verdict"] == "worse" and worse["accuracy_difference_ci"][1] < 0
    assert worse["mcnemar_p"] == pytest.approx(better["mcnemar_p"], abs=TOL)


def test_the_minimum_detectable_effect_solves_connors_formula_and_shrinks_with_more_rows():
    from scipy.stats import norm

    z = norm.ppf(0.975)  # two-sided, alpha 0.05
    z_power = norm.ppf(0.8)
    small = minimum_detectable_effect(n=200, discordance_rate=0.1, alpha=0.05, power=0.8)
    large = minimum_detectable_effect(n=2000, discordance_rate=0.1, alpha=0.05, power=0.8)

    assert 200 * small**2 == pytest.approx((z * np.sqrt(0.1) + z_power * np.sqrt(0.1 - small**2)) ** 2, rel=1e-9)
    assert large < small / 3
    assert minimum_detectable_effect(n=3, discordance_rate=0.0, alpha=0.05, power=0.8) is None


def test_paired_comparison_is_the_same_for_the_same_seed():
    y, champion, candidate, names = _paired(both_right=80, champion_only=9, candidate_only=12, both_wrong=19)
    first = compare_paired(y, champion, candidate, names, n_boot=500, seed=4)

    assert compare_paired(y, champion, candidate, names, n_boot=500, seed=4) == first == _as_json(first)
    assert compare_paired(y, champion, candidate, names, n_boot=500, seed=5) != first


def test_zero_rows_compare_as_not_distinguishable():
    result = _as_json(compare_paired([], np.zeros((0, 2)), np.zeros((0, 2)), ["no", "yes"], n_boot=100, seed=0))

    assert result["n"] == 0 and result["mcnemar_p"] == 1.0 and result["verdict"] == "not distinguishable"
    assert result["accuracy_difference"] is None


def test_a_candidate_matrix_of_the_wrong_shape_is_refused_by_name():
    y, champion, _, names = _paired(both_right=5, champion_only=1, candidate_only=1, both_wrong=1)
    with pytest.raises(ValueError, match=r"proba_candidate has shape \(7, 2\); expected \(8, 2\)"):
        compare_paired(y, champion, champion[:7], names, n_boot=10, seed=0)


# --- compare_paired per subgroup ---------------------------------------------------------------


def _paired_sites(**sites: tuple[int, int, int, int]):
    """Two binary models and a site per row: per site, rows both get right, only the champion, only the candidate,
    neither (in that order)."""
    y, champion, candidate, site = [], [], [], []
    for name, counts in sites.items():
        for (champion_right, candidate_right), count in zip(((1, 1), (1, 0), (0, 1), (0, 0)), counts, strict=True):
            for _ in range(count):
                yes = len(y) % 2 == 1
                y.append("yes" if yes else "no")
                champion.append([0.2, 0.8] if yes == bool(champion_right) else [0.8, 0.2])
                candidate.append([0.3, 0.7] if yes == bool(candidate_right) else [0.7, 0.3])
                site.append(name)
    return y, np.array(champion), np.array(candidate), ["no", "yes"], np.array(site, dtype=object)


def test_each_subgroup_gets_its_paired_difference_and_small_ones_are_not_judged():
    y, champion, candidate, names, site = _paired_sites(A=(50, 2, 8, 10), B=(204, 16, 0, 180), C=(8, 1, 0, 1))
    result = _as_json(compare_paired(y, champion, candidate, names, groups={"site": site}, n_boot=500, seed=0))
    groups = result["subgroups"]["site"]

    assert set(groups) == {"A", "B", "C"} and result["min_group_size"] == 30
    for value in ("A", "B"):
        mask = site == value
        entry = groups[value]
        on_rows = [names[i] for i in candidate[mask].argmax(axis=1)], [names[i] for i in champion[mask].argmax(axis=1)]
        expected = accuracy_score(np.array(y)[mask], on_rows[0]) - accuracy_score(np.array(y)[mask], on_rows[1])
        assert entry["n"] == mask.sum() and entry["reason"] is None
        assert entry["accuracy_difference"] == pytest.approx(expected, abs=TOL)
        assert entry["accuracy_candidate"] - entry["accuracy_champion"] == pytest.approx(expected, abs=TOL)
        low, high = entry["accuracy_difference_ci"]
        assert low <= entry["accuracy_difference"] <= high
    # B: the candidate is wrong on 16 rows the champion got, right on none it missed: every resample is below 0.
    assert groups["B"]["accuracy_difference"] == pytest.approx(-0.04, abs=TOL)
    assert groups["B"]["accuracy_difference_ci"][1] < 0
    assert groups["C"] == {
        "n": 10,
        "accuracy_champion": None,
        "accuracy_candidate": None,
        "accuracy_difference": None,
        "accuracy_difference_ci": None,
        "reason": "fewer than 30 rows",
    }


def test_subgroups_leave_the_overall_comparison_as_it_was_and_each_interval_draws_on_its_own():
    y, champion, candidate, names, site = _paired_sites(A=(60, 5, 9, 6), B=(40, 9, 3, 8))
    age = np.array(["young", "old"] * (len(y) // 2), dtype=object)
    plain = compare_paired(y, champion, candidate, names, n_boot=300, seed=2)
    alone = compare_paired(y, champion, candidate, names, groups={"site": site}, n_boot=300, seed=2)
    both = compare_paired(y, champion, candidate, names, groups={"age": age, "site": site}, n_boot=300, seed=2)

    assert plain["subgroups"] == {}
    assert {k: v for k, v in alone.items() if k != "subgroups"} == {k: v for k, v in plain.items() if k != "subgroups"}
    assert both["subgroups"]["site"] == alone["subgroups"]["site"]
    other_seed = compare_paired(y, champion, candidate, names, groups={"site": site}, n_boot=300, seed=3)
    assert (
        other_seed["subgroups"]["site"]["A"]["accuracy_difference_ci"]
        != alone["subgroups"]["site"]["A"]["accuracy_difference_ci"]
    )


def test_zero_rows_compare_with_empty_subgroups_and_bad_groups_are_refused_by_name():
    empty = compare_paired([], np.zeros((0, 2)), np.zeros((0, 2)), ["no", "yes"], groups={"site": []}, n_boot=10)
    assert empty["subgroups"] == {"site": {}}
    y, champion, candidate, names = _paired(both_right=5, champion_only=1, candidate_only=1, both_wrong=1)
    with pytest.raises(ValueError, match=r"groups\['site'\] has 3 values for 8 rows"):
        compare_paired(y, champion, candidate, names, groups={"site": ["a", "b", "c"]}, n_boot=10, seed=0)
    with pytest.raises(ValueError, match="min_group_size must be a positive integer"):
        compare_paired(y, champion, candidate, names, groups={"site": ["a"] * 8}, min_group_size=0, n_boot=10)
