"""`manage.py simulate_loop` (issue 9, point 12): an oracle plays the real loop and the curve is written.

Tiny budgets on the breast-cancer source (569 rows): each loop imports its own
fresh copy, trains two or three times and answers a handful of items.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from annotations.models import Dataset, Review
from governance.models import AuditEvent
from governance.selectors import audit_chain_verify
from models_app.ml.learning_curve import CURVE_COLUMNS, POINT_COLUMNS, CurvePoint, curve_summarise
from models_app.models import ModelVersion
from models_app.simulation import ORACLE_USERNAME, loop_config_build, loop_simulate, loop_users_ensure
from models_app.simulation_data import source_load


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


@pytest.mark.django_db
def test_the_command_answers_through_review_submit_and_writes_the_curve(tmp_path: Path) -> None:
    call_command(
        "simulate_loop",
        dataset="sim",
        source="breast_cancer",
        strategy="least_confidence",
        budget=3,
        retrain_every=2,
        seeds=2,
        out=str(tmp_path),
    )

    points = _rows(tmp_path / "points.csv")
    assert list(points[0]) == POINT_COLUMNS
    assert [(p["seed"], p["answers"]) for p in points] == [
        ("0", "0"), ("0", "2"), ("0", "3"), ("1", "0"), ("1", "2"), ("1", "3"),
    ]  # fmt: skip
    assert all(int(p["training_labels"]) == 24 + int(p["answers"]) for p in points)  # 12 seed rows per class
    curve = _rows(tmp_path / "curve.csv")
    assert list(curve[0]) == CURVE_COLUMNS
    assert [(c["answers"], c["seeds"]) for c in curve] == [("0", "2"), ("2", "2"), ("3", "2")]
    assert all(0.5 < float(c["accuracy_mean"]) <= 1 and float(c["log_loss_mean"]) > 0 for c in curve)
    assert (tmp_path / "curve.svg").read_text().startswith("<svg")

    # The last point is at the budget's end, even off the retraining rhythm. Each seed had its own dataset;
    # every answer is a review by the oracle carrying the true label, with the queue's selection reason,
    # and every new model went live (the last one is champion).
    frame = source_load("breast_cancer").frame
    truth = dict(zip(frame["external_id"], frame["label"], strict=True))
    datasets = list(Dataset.objects.filter(slug__startswith="sim-"))
    assert len(datasets) == 2
    for dataset in datasets:
        reviews = list(Review.objects.filter(item__dataset=dataset).select_related("item", "label", "reviewer"))
        assert len(reviews) == 3
        assert {r.reviewer.username for r in reviews} == {ORACLE_USERNAME}
        assert all(r.label.name == truth[r.item.external_id] for r in reviews)
        assert {r.selection_strategy for r in reviews} == {"least_confidence"}
        champion = ModelVersion.objects.get(dataset=dataset, stage=ModelVersion.Stage.CHAMPION)
        assert champion.version == 3
    assert AuditEvent.objects.filter(action="review.submitted").count() == 6
    checked, broken = audit_chain_verify()
    assert broken is None and checked == AuditEvent.objects.count()


@pytest.mark.django_db
def test_the_same_seed_gives_the_same_curve_and_the_same_answers() -> None:
    # The random strategy: every item comes from the audit slice, so the order hangs on the seeded keys.
    config = loop_config_build(
        source="breast_cancer", strategy="random", budget=3, retrain_every=3, audit_slice_percent=None,
        per_class=None, seeds=1,
    )  # fmt: skip
    users = loop_users_ensure()

    def once() -> tuple[list[CurvePoint], list[str]]:
        points = loop_simulate(config=config, seed=7, slug_prefix="same", users=users)
        dataset = Dataset.objects.filter(slug__startswith="same").order_by("-pk").first()
        answered = Review.objects.filter(item__dataset=dataset).order_by("pk")
        assert {r.selection_strategy for r in answered} == {"audit_slice"}
        return points, [r.item.external_id for r in answered.select_related("item")]

    first, second = once(), once()
    assert first == second
    assert [p.answers for p in first[0]] == [0, 3]
    assert Dataset.objects.filter(slug__startswith="same").count() == 2  # a fresh copy each time


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"strategy": "most_confident"}, "--strategy: Unknown strategy 'most_confident'"),
        ({"source": "iris"}, "--source: Unknown source 'iris'"),
        ({"budget": 0}, "--budget: The budget is a number of answers"),
        ({"retrain_every": 50}, "--retrain-every: Retrain every 1 to --budget (10) answers, got 50"),
        ({"seeds": 0}, "--seeds: Run 1 to 100 seeds, got 0"),
        ({"audit_slice": 120}, "--audit-slice: The audit slice is a share of served items: 0 to 100"),
        ({"strategy": "random", "audit_slice": 10}, "--audit-slice: The random strategy is the audit slice at 100%"),
        ({"seed_per_class": 1}, "--seed-per-class: Seed rows per class: 2"),
        ({"dataset": "Not A Slug"}, "--dataset 'Not A Slug': use a slug"),
    ],
)
def test_bad_arguments_are_refused_with_the_argument_and_the_reason(arguments: dict, message: str) -> None:
    options = {"dataset": "sim", "strategy": "margin", "budget": 10, "retrain_every": 5, "seeds": 1, **arguments}
    with pytest.raises(CommandError) as refused:
        call_command("simulate_loop", **options)
    assert message in str(refused.value)


def test_the_curve_is_the_mean_and_sample_sd_over_seeds_at_each_budget() -> None:
    points = [
        CurvePoint(seed=s, answers=a, training_labels=a, audit_slice_answers=0, model_version=1,
                   accuracy=acc, log_loss=0.5, ece=0.1)
        for s, a, acc in [(0, 0, 0.6), (1, 0, 0.8), (0, 10, 0.9), (1, 10, 0.9), (2, 10, 0.6)]
    ]  # fmt: skip
    rows = curve_summarise(points)
    assert [(r.answers, r.seeds) for r in rows] == [(0, 2), (10, 3)]
    assert rows[0].stats["accuracy"] == pytest.approx((0.7, 0.1414213562))
    assert rows[1].stats["accuracy"] == pytest.approx((0.8, 0.1732050808))
    assert rows[1].stats["log_loss"] == (0.5, 0.0)
