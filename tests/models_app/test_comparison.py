"""The comparison rules: each metric's direction, a tolerance, a verdict in words and ▲/▼."""

from __future__ import annotations

import pytest

from models_app.comparison import TOLERANCE, TRACKED_METRICS, Verdict, compare_metrics, regressions

BY_KEY = {m.key: m for m in TRACKED_METRICS}


@pytest.mark.parametrize(
    ("key", "higher"), [("accuracy", True), ("macro_f1", True), ("log_loss", False), ("brier", False), ("ece", False)]
)
def test_each_tracked_metric_knows_which_way_is_better(key, higher):
    assert BY_KEY[key].higher_is_better is higher
    assert BY_KEY[key].direction == ("higher is better" if higher else "lower is better")


def test_a_lower_accuracy_is_worse_and_a_lower_log_loss_is_better():
    rows = {
        r.metric.key: r
        for r in compare_metrics({"accuracy": 0.90, "log_loss": 0.20}, {"accuracy": 0.95, "log_loss": 0.30})
    }

    assert rows["accuracy"].verdict is Verdict.WORSE
    assert (rows["accuracy"].symbol, rows["accuracy"].words) == ("▼", "worse")
    assert rows["accuracy"].delta == pytest.approx(-0.05)
    assert rows["log_loss"].verdict is Verdict.BETTER
    assert (rows["log_loss"].symbol, rows["log_loss"].words) == ("▲", "better")


def test_a_higher_brier_score_is_a_regression():
    [row] = compare_metrics({"brier": 0.12}, {"brier": 0.08})

    assert row.is_regression
    assert regressions([row]) == [row]


def test_a_difference_within_the_tolerance_is_the_same():
    [row] = compare_metrics({"accuracy": 0.950}, {"accuracy": 0.950 - TOLERANCE / 2})

    assert row.verdict is Verdict.SAME
    assert row.words == "same within tolerance"
    assert not row.is_regression


def test_without_a_reference_there_is_no_verdict_only_the_candidates_value():
    [row] = compare_metrics({"accuracy": 0.9, "n": 100, "per_class": {}}, None)

    assert (row.candidate, row.reference, row.delta, row.verdict, row.symbol) == (0.9, None, None, None, "")


def test_metrics_that_are_missing_or_not_numbers_are_left_out():
    rows = compare_metrics({"accuracy": 0.9, "brier_positive": None, "log_loss": "nan?"}, {"accuracy": 0.9})

    assert [r.metric.key for r in rows] == ["accuracy"]


def test_a_regression_reads_as_a_sentence_with_both_values_and_the_direction():
    [row] = compare_metrics({"accuracy": 0.9}, {"accuracy": 0.95})

    assert row.sentence(candidate_name="v2", reference_name="the current champion v1") == (
        "v2 is worse than the current champion v1 on accuracy: 0.900 against 0.950 (-0.050; higher is better)."
    )


def test_the_losses_have_a_wider_tolerance_than_accuracy():
    rows = {
        r.metric.key: r
        for r in compare_metrics({"accuracy": 0.94, "log_loss": 0.31}, {"accuracy": 0.95, "log_loss": 0.30})
    }

    assert BY_KEY["log_loss"].tolerance > BY_KEY["accuracy"].tolerance == TOLERANCE
    assert rows["accuracy"].verdict is Verdict.WORSE  # one point of accuracy
    assert rows["log_loss"].verdict is Verdict.SAME  # 0.01 nats


def test_a_tolerance_can_be_given_for_all_metrics():
    [row] = compare_metrics({"log_loss": 0.31}, {"log_loss": 0.30}, tolerance=0.001)

    assert row.verdict is Verdict.WORSE
