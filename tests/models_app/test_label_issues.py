"""Re-review of likely label errors (issue 8, point 1, label-issue strategy): cleanlab on out-of-fold probabilities."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pandas as pd
import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from annotations.counters import counts_recount, dataset_counts
from annotations.models import Dataset, GoldLabel, ImportBatch, Item, LabelClass, QueueStrategy, Review
from annotations.queue import queue_next_item
from annotations.services import ReviewAnswer, review_submit
from governance.models import AuditEvent
from models_app.label_issues import label_issues_reopen
from models_app.ml.baseline import FeatureSpec
from models_app.ml.label_issues import LabelIssueDataError, label_issue_scores
from tests.helpers import csv_bytes, login, make_user, synthetic_rows
from workflow_site.access import Role

# --- the pure ranking -------------------------------------------------------------------------------------------


def _two_gaussians(n: int, flips: int, seed: int) -> tuple[pd.DataFrame, list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = np.where(np.arange(n) % 2 == 0, "malignant", "benign")
    frame = pd.DataFrame(
        {"radius": np.where(truth == "malignant", 18.0, 9.0) + rng.normal(0, 1.0, n), "texture": rng.normal(15, 2, n)}
    )
    flipped = rng.choice(n, flips, replace=False)
    labels = truth.astype(object)
    labels[flipped] = np.where(truth[flipped] == "malignant", "benign", "malignant")
    return frame, list(labels), flipped


SPECS = [FeatureSpec("radius", "float"), FeatureSpec("texture", "float")]


def test_the_flipped_labels_rank_lowest_and_cleanlab_flags_only_them():
    frame, labels, flipped = _two_gaussians(200, 10, seed=3)

    scores = label_issue_scores(frame, labels, SPECS, ["malignant", "benign"], seed=0)

    assert set(scores.worst_first()[:10].tolist()) == set(flipped.tolist())
    flagged = set(np.flatnonzero(scores.is_issue).tolist())
    assert flagged and flagged <= set(flipped.tolist())
    assert scores.probabilities.shape == (200, 2) and scores.classes == ["malignant", "benign"]
    assert np.all((scores.quality >= 0) & (scores.quality <= 1))


def test_three_classes_with_a_category_feature_and_an_unused_class():
    rng = np.random.default_rng(5)
    n = 150
    truth = np.array(["a", "b", "c"])[np.arange(n) % 3]
    frame = pd.DataFrame(
        {
            "x": np.select([truth == "a", truth == "b"], [0.0, 10.0], 20.0) + rng.normal(0, 1.0, n),
            "site": rng.choice(["north", "south"], n).astype(object),
        }
    )
    labels = list(truth)
    flipped = [4, 50, 101]  # b → a, c → b, c → a
    labels[4], labels[50], labels[101] = "a", "b", "a"
    specs = [FeatureSpec("x", "float"), FeatureSpec("site", "category", ("north", "south"))]

    scores = label_issue_scores(frame, labels, specs, ["a", "b", "c", "never used"], seed=0)

    assert scores.classes == ["a", "b", "c"]  # a class without labels takes no part
    assert set(scores.worst_first()[:3].tolist()) == set(flipped)


def test_the_scores_are_reproducible_for_a_seed():
    frame, labels, _ = _two_gaussians(80, 4, seed=1)

    first = label_issue_scores(frame, labels, SPECS, ["malignant", "benign"], seed=7)
    again = label_issue_scores(frame, labels, SPECS, ["malignant", "benign"], seed=7)

    assert np.array_equal(first.quality, again.quality)


def test_a_class_with_fewer_labels_than_folds_is_refused_by_name():
    frame, labels, _ = _two_gaussians(40, 0, seed=1)
    labels = ["malignant"] * 36 + ["benign"] * 4

    with pytest.raises(LabelIssueDataError, match=r"at least 5 gold labels; too few for: benign \(4\)"):
        label_issue_scores(frame, labels, SPECS, ["malignant", "benign"])


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (["malignant"] * 10, "at least two classes; found 1"),
        (["malignant"] * 5 + ["cyst"] * 5, "Labels not in the schema: cyst"),
    ],
)
def test_labels_that_cannot_be_scored_are_refused(labels, message):
    frame, _, _ = _two_gaussians(10, 0, seed=1)

    with pytest.raises(LabelIssueDataError, match=message):
        label_issue_scores(frame, labels, SPECS, ["malignant", "benign"])


# --- the service ---------------------------------------------------------------------------------------------

# Rows of the labelled file whose label is wrong (synthetic_rows: even = malignant, large radius).
WRONG = [3, 10, 27]


def _wrong_rows(rows: list[dict], wrong: list[int]) -> list[dict]:
    for i in wrong:
        rows[i]["label"] = "benign" if rows[i]["label"] == "malignant" else "malignant"
    return rows


@pytest.fixture
def labelled(dataset, model_admin) -> Dataset:
    """Tumours with 40 imported gold labels (3 wrong), a holdout of 10 (one wrong) and 5 unlabelled open items."""
    from annotations.services import import_batch_create

    for rows, purpose, name in [
        (_wrong_rows(synthetic_rows(40), WRONG), ImportBatch.Purpose.REVIEW, "seed.csv"),
        (_wrong_rows(synthetic_rows(10, start=100), [1]), ImportBatch.Purpose.HOLDOUT, "holdout.csv"),
        (synthetic_rows(5, start=200, labelled=False), ImportBatch.Purpose.REVIEW, "pool.csv"),
    ]:
        import_batch_create(dataset=dataset, user=model_admin, file_name=name, data=csv_bytes(rows), purpose=purpose)
    return dataset


def _item(dataset: Dataset, external_id: str) -> Item:
    return Item.objects.get(dataset=dataset, external_id=external_id)


def _counters(dataset_id: int) -> dict[str, int]:
    return {k: v for k, v in dataset_counts(dataset_ids=[dataset_id])[dataset_id].items() if v}


def test_the_worst_labels_are_reopened_worst_first_with_their_gold_label_kept(labelled, model_admin):
    holdout_before = list(
        Item.objects.filter(dataset=labelled, queue_state="holdout").values_list("pk", "gold_label__label_id")
    )

    done = label_issues_reopen(dataset_id=labelled.pk, user=model_admin, limit=3)

    wrong_ids = {_item(labelled, f"t{i:05d}").pk for i in WRONG}
    assert {pk for pk, _ in done.reopened} == wrong_ids
    assert done.scored == 40 and done.skipped == 0
    assert [q for _, q in done.reopened] == sorted(q for _, q in done.reopened)
    for pk, quality in done.reopened:
        item = Item.objects.select_related("gold_label").get(pk=pk)
        assert item.queue_state == Item.QueueState.OPEN and item.answers_count == 0
        assert item.queue_priority == quality and item.priority_strategy == QueueStrategy.LABEL_ISSUE
        assert item.review_round_started_at is not None
        assert item.gold_label.origin == GoldLabel.Origin.IMPORT  # stays until the re-review replaces it
    assert Item.objects.filter(dataset=labelled, queue_state="done").count() == 37
    # the holdout (one of its labels is wrong too) is neither scored nor touched
    assert (
        list(Item.objects.filter(dataset=labelled, queue_state="holdout").values_list("pk", "gold_label__label_id"))
        == holdout_before
    )
    assert _counters(labelled.pk) == counts_recount(dataset_id=labelled.pk)
    event = AuditEvent.objects.get(action="label_issues.reopened")
    assert event.actor_id == model_admin.pk and event.dataset_id == labelled.pk
    assert event.after["item_ids"] == [pk for pk, _ in done.reopened]
    assert event.after["label_quality"] == [q for _, q in done.reopened]
    assert event.after["scored"] == 40 and event.after["reopened"] == 3


def test_a_limit_takes_exactly_that_many_of_the_worst(labelled, model_admin):
    done = label_issues_reopen(dataset_id=labelled.pk, user=model_admin, limit=5)

    assert len(done.reopened) == 5
    reopened = {pk for pk, _ in done.reopened}
    assert {_item(labelled, f"t{i:05d}").pk for i in WRONG} <= reopened
    worst_open = Item.objects.filter(dataset=labelled, priority_strategy=QueueStrategy.LABEL_ISSUE)
    assert set(worst_open.values_list("pk", flat=True)) == reopened


@pytest.mark.parametrize("limit", [0, -1, 10_001, "5", True])
def test_a_limit_outside_one_to_ten_thousand_changes_nothing(labelled, model_admin, limit):
    with pytest.raises(ValidationError, match="from 1 to 10,000"):
        label_issues_reopen(dataset_id=labelled.pk, user=model_admin, limit=limit)

    assert not Item.objects.filter(dataset=labelled, priority_strategy=QueueStrategy.LABEL_ISSUE).exists()
    assert not AuditEvent.objects.filter(action="label_issues.reopened").exists()


def test_a_gold_label_that_changed_while_scoring_is_passed_over_for_the_next_worst(labelled, model_admin):
    """The candidates are rechecked under the row lock: here one was revised between scoring and reopening."""
    from models_app import label_issues

    first = _item(labelled, f"t{WRONG[0]:05d}")
    real_reopen = label_issues._reopen

    def revised_meanwhile(**kwargs):  # type: ignore[no-untyped-def]
        gold = GoldLabel.objects.get(item=first)
        GoldLabel.objects.filter(pk=gold.pk).update(
            label=LabelClass.objects.filter(dataset=labelled).exclude(pk=gold.label_id).get()
        )
        return real_reopen(**kwargs)

    with mock.patch.object(label_issues, "_reopen", side_effect=revised_meanwhile):
        done = label_issues_reopen(dataset_id=labelled.pk, user=model_admin, limit=3)

    assert done.skipped == 1 and len(done.reopened) == 3
    assert first.pk not in {pk for pk, _ in done.reopened}


def test_re_review_with_overlap_two_counts_only_the_new_rounds_answers(dataset, model_admin, reviewer, reviewer2):
    """An item two reviewers agreed on, wrongly, is reopened; the old pair's answers no longer count."""
    from annotations.services import import_batch_create

    import_batch_create(
        dataset=dataset, user=model_admin, file_name="seed.csv", data=csv_bytes(synthetic_rows(40)), purpose="review"
    )
    import_batch_create(
        dataset=dataset,
        user=model_admin,
        file_name="pool.csv",
        data=csv_bytes(synthetic_rows(1, start=300, labelled=False)),  # t00300: malignant by its radius
        purpose="review",
    )
    Dataset.objects.filter(pk=dataset.pk).update(overlap=2)
    benign = LabelClass.objects.get(dataset=dataset, name="benign")
    malignant = LabelClass.objects.get(dataset=dataset, name="malignant")

    def answer(user, label):  # type: ignore[no-untyped-def]
        queued = queue_next_item(dataset=dataset, reviewer=user)
        assert queued is not None
        review_submit(item_id=queued.item.pk, reviewer=user, answer=ReviewAnswer(label=label, shown_prediction_id=None))
        return queued

    answer(reviewer, benign)
    answer(reviewer2, benign)
    item = _item(dataset, "t00300")
    assert item.queue_state == "done" and item.gold_label.origin == GoldLabel.Origin.CONSENSUS

    done = label_issues_reopen(dataset_id=dataset.pk, user=model_admin, limit=1)

    assert [pk for pk, _ in done.reopened] == [item.pk]
    # fresh eyes: the reviewers of the first round are not asked again
    assert queue_next_item(dataset=dataset, reviewer=reviewer) is None
    third = make_user("reviewer3", Role.REVIEWER, dataset=dataset)
    fourth = make_user("reviewer4", Role.REVIEWER, dataset=dataset)
    queued = answer(third, malignant)
    item.refresh_from_db()
    # the two old answers would make three, disagreeing, and send it to adjudication
    assert (item.queue_state, item.answers_count) == ("open", 1)
    review = Review.objects.filter(item=item, reviewer=third).get()
    assert review.selection_strategy == QueueStrategy.LABEL_ISSUE
    assert review.selection_score == pytest.approx(1 - queued.item.queue_priority)

    answer(fourth, malignant)

    item = Item.objects.select_related("gold_label__label").get(pk=item.pk)
    assert (item.queue_state, item.answers_count) == ("done", 2)
    assert (item.gold_label.label.name, item.gold_label.origin) == ("malignant", GoldLabel.Origin.CONSENSUS)
    assert _counters(dataset.pk) == counts_recount(dataset_id=dataset.pk)


def test_a_dataset_without_scorable_labels_is_refused(dataset, model_admin):
    with pytest.raises(ValidationError, match="no reviewed items with gold labels"):
        label_issues_reopen(dataset_id=dataset.pk, user=model_admin, limit=5)


# --- the API, the task and the command ---------------------------------------------------------------------


def _post(user, dataset: Dataset, body: dict):  # type: ignore[no-untyped-def]
    return login(user).post(f"/api/datasets/{dataset.pk}/label-issues/", body, content_type="application/json")


def test_a_model_admin_queues_the_job_and_gets_202(labelled, model_admin):
    response = _post(model_admin, labelled, {"limit": 3})

    assert response.status_code == 202, response.content
    assert response.json() == {"dataset_id": labelled.pk, "limit": 3, "gold_labels_to_score": 40, "status": "queued"}
    # tests run tasks in-process: the job has run
    assert Item.objects.filter(dataset=labelled, priority_strategy=QueueStrategy.LABEL_ISSUE).count() == 3
    assert AuditEvent.objects.get(action="label_issues.reopened").actor_id == model_admin.pk


@pytest.mark.parametrize("persona", ["reviewer", "adjudicator", "auditor", "outsider", "stranger_admin"])
def test_only_a_model_admin_of_the_dataset_may_start_it(labelled, persona, request):
    user = (
        make_user("other-admin", Role.MODEL_ADMIN) if persona == "stranger_admin" else request.getfixturevalue(persona)
    )
    with mock.patch("models_app.tasks.label_issues_reopen.apply_async") as apply_async:
        response = _post(user, labelled, {"limit": 3})

    assert response.status_code == 403
    apply_async.assert_not_called()


@pytest.mark.parametrize(("body", "field"), [({"limit": 0}, "limit"), ({"limit": 10_001}, "limit"), ({}, "limit")])
def test_a_bad_limit_is_a_400_naming_the_field(labelled, model_admin, body, field):
    with mock.patch("models_app.tasks.label_issues_reopen.apply_async") as apply_async:
        response = _post(model_admin, labelled, body)

    assert response.status_code == 400 and field in response.json()
    apply_async.assert_not_called()


def test_labels_too_few_to_score_are_a_400_before_anything_is_queued(dataset, model_admin, import_rows):
    import_rows(synthetic_rows(6))  # three of each class: fewer than the five folds
    with mock.patch("models_app.tasks.label_issues_reopen.apply_async") as apply_async:
        response = _post(model_admin, dataset, {"limit": 3})

    assert response.status_code == 400 and "too few for" in response.content.decode()
    apply_async.assert_not_called()


def test_a_broker_that_cannot_be_reached_is_a_503_and_nothing_runs(labelled, model_admin):
    with mock.patch("models_app.tasks.label_issues_reopen.apply_async", side_effect=OSError("broker down")):
        response = _post(model_admin, labelled, {"limit": 3})

    assert response.status_code == 503
    assert not Item.objects.filter(dataset=labelled, priority_strategy=QueueStrategy.LABEL_ISSUE).exists()


def test_the_task_returns_quietly_for_a_dataset_or_user_that_is_gone(labelled, model_admin):
    from models_app.tasks import label_issues_reopen as task

    assert task.run(labelled.pk + 999, model_admin.pk, 3) == 0
    assert task.run(labelled.pk, model_admin.pk + 999, 3) == 0
    assert not AuditEvent.objects.filter(action="label_issues.reopened").exists()


def test_the_management_command_reopens_and_refuses_clearly(labelled, capsys):
    call_command("label_issues_reopen", str(labelled.pk), "--limit", "2")

    assert "reopened 2 for re-review" in capsys.readouterr().out
    event = AuditEvent.objects.get(action="label_issues.reopened")
    assert event.actor_id is None and event.actor_username == "manage.py label_issues_reopen"
    with pytest.raises(CommandError, match="No dataset with id"):
        call_command("label_issues_reopen", str(labelled.pk + 999), "--limit", "2")
    with pytest.raises(CommandError, match="from 1 to 10,000"):
        call_command("label_issues_reopen", str(labelled.pk), "--limit", "0")


def test_free_text_is_learned_from_and_its_flipped_labels_rank_lowest():
    rng = np.random.default_rng(11)
    n = 200
    truth = np.where(np.arange(n) % 2 == 0, "malignant", "benign")
    words = {
        "malignant": ["irregular", "spiculated", "mass", "growth"],
        "benign": ["smooth", "round", "stable", "cyst"],
    }
    filler = ["the", "scan", "shows", "a", "lesion", "left", "breast"]
    notes = [
        " ".join(rng.choice(filler, 5).tolist() + rng.choice(words[label], 2).tolist()) if i % 17 else None
        for i, label in enumerate(truth)
    ]  # every 17th note is missing: an empty note, not an error
    frame = pd.DataFrame({"note": pd.Series(notes, dtype="object")})
    flipped = [2, 33, 64, 95, 120]
    labels = list(truth)
    for i in flipped:
        labels[i] = "benign" if truth[i] == "malignant" else "malignant"

    scores = label_issue_scores(frame, labels, [FeatureSpec("note", "text")], ["malignant", "benign"], seed=0)

    assert set(scores.worst_first()[:5].tolist()) == set(flipped)


def test_text_with_no_words_is_refused_clearly():
    frame = pd.DataFrame({"note": pd.Series(["", None] * 10, dtype="object")})
    labels = ["a", "b"] * 10

    with pytest.raises(LabelIssueDataError, match="free-text features hold no words"):
        label_issue_scores(frame, labels, [FeatureSpec("note", "text")], ["a", "b"], seed=0)
