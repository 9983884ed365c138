"""Text datasets end to end (issue 9, point 3): a note column imported, a text model trained on it, its predictions
explained by the note's most influential words on the card, and the item reviewed."""

from __future__ import annotations

import csv
import io
import random

import pytest
from django.db import transaction
from django.urls import reverse

from annotations.models import Dataset, DatasetMembership, Feature, Item, LabelClass, Review
from annotations.services import import_batch_create
from models_app.models import ModelVersion, RetrainingPolicy, TrainingRun
from models_app.prediction import predictions_refresh
from models_app.services import champion_set, training_run_request
from models_app.training import training_run_execute
from tests.helpers import login

pytestmark = pytest.mark.django_db

_SIGNS = {"malignant": ["spiculated", "irregular", "invasive"], "benign": ["smooth", "cyst", "stable"]}
_FILLER = ["patient", "seen", "today", "scan", "shows", "a", "lesion", "left", "right", "follow", "up"]


def _notes(n: int, start: int, rng: random.Random, labelled: bool = True) -> list[dict]:
    rows = []
    for i in range(start, start + n):
        label = "malignant" if i % 2 else "benign"
        words = rng.sample(_FILLER, 5) + [rng.choice(_SIGNS[label])]
        rng.shuffle(words)
        row = {"external_id": f"n{i}", "report": " ".join(words).capitalize() + ".\nSigned."}
        if labelled:
            row["label"] = label
        rows.append(row)
    return rows


def _csv(rows: list[dict]) -> bytes:
    """Notes span lines: quoted as a spreadsheet would write them."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), quoting=csv.QUOTE_MINIMAL)
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


@pytest.fixture
def reports(model_admin, reviewer) -> Dataset:  # type: ignore[no-untyped-def]
    dataset = Dataset.objects.create(name="Reports", slug="reports")
    Feature.objects.create(dataset=dataset, position=0, name="report", dtype=Feature.Dtype.TEXT)
    for position, name in enumerate(["benign", "malignant"]):
        LabelClass.objects.create(dataset=dataset, position=position, name=name)
    for user in (model_admin, reviewer):
        DatasetMembership.objects.create(dataset=dataset, user=user)
    rng = random.Random(3)
    for rows, purpose, name in (
        (_notes(60, 0, rng), "review", "seed.csv"),
        (_notes(30, 100, rng), "holdout", "holdout.csv"),
        (_notes(8, 200, rng, labelled=False), "review", "pool.csv"),
    ):
        import_batch_create(dataset=dataset, user=model_admin, file_name=name, data=_csv(rows), purpose=purpose)
    return dataset


@pytest.mark.parametrize(
    ("algorithm", "hyperparameters"),
    [("tfidf_logistic_regression", {"min_df": 1}), ("torch_text", {"epochs": 30, "min_count": 1})],
)
def test_a_text_model_learns_from_the_notes_and_the_card_shows_the_words_that_weighed(
    reports, model_admin, reviewer, algorithm, hyperparameters
):
    RetrainingPolicy.objects.update_or_create(
        dataset=reports, defaults={"algorithm": algorithm, "hyperparameters": hyperparameters}
    )
    run = training_run_request(dataset=reports, trigger="manual", requested_by=model_admin, dispatch=False)
    version = training_run_execute(run_id=run.pk)
    assert version is not None, TrainingRun.objects.get(pk=run.pk).error
    assert version.algorithm == algorithm and version.feature_names == ["report"]
    assert version.metrics["holdout"]["accuracy"] >= 0.9  # one sign word per note decides it

    with transaction.atomic():
        champion_set(model_version=version, actor=model_admin, reason="text model")
    predictions_refresh(dataset_id=reports.pk)
    item = Item.objects.filter(dataset=reports, queue_state="open").order_by("pk").first()
    assert item.predicted_by_version == version.version
    explanation = item.prediction_explanation
    assert explanation["kind"] == "tokens" and explanation["class"] == item.predicted_label.name
    words = [c[0] for c in explanation["contributors"]]
    assert set(words) & set(_SIGNS[item.predicted_label.name]), words  # the sign word is among the top words

    client = login(reviewer)
    card = client.get(reverse("annotations:review", args=[reports.pk])).content.decode()
    assert "Words that weigh most" in card and "Signed." in card
    served = Item.objects.get(dataset=reports, leased_to=reviewer)
    response = client.post(
        reverse("annotations:review_submit", args=[reports.pk, served.pk]),
        {"label": served.predicted_label.name, "shown_prediction": served.prediction_id, "action": "submit"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    review = Review.objects.get(item=served)
    assert review.shown_prediction_id == served.prediction_id and review.decision == "accept"
    assert ModelVersion.objects.get(pk=version.pk).fit_info["label"]


def test_a_notes_only_dataset_gets_its_likeliest_wrong_labels_back_for_re_review(reports, model_admin):
    """Label-issue scoring learns from the notes (TF-IDF), so a dataset whose only feature is text can use it."""
    from models_app.label_issues import label_issues_check, label_issues_reopen

    wrong = Item.objects.get(dataset=reports, external_id="n4")  # a benign note labelled malignant by mistake
    malignant = LabelClass.objects.get(dataset=reports, name="malignant")
    wrong.gold_label.label = malignant
    wrong.gold_label.save(update_fields=["label"])

    assert label_issues_check(dataset=reports) == 60
    result = label_issues_reopen(dataset_id=reports.pk, user=model_admin, limit=3)

    assert wrong.pk in [pk for pk, _ in result.reopened]
    assert Item.objects.get(pk=wrong.pk).queue_state == Item.QueueState.OPEN
