"""Model cards and datasheets from the lineage (issue 10, point 8): built from registry facts, printable and JSON,
the signed decisions on them, and a changed record shows as a signature that no longer matches."""

from __future__ import annotations

from django.urls import reverse

from models_app.models import Evaluation, ModelVersion, SnapshotLabel
from tests.conftest import login
from tests.helpers import review_next


def test_the_model_card_has_every_section_from_the_registry_and_the_signed_decision(trained_dataset, auditor):
    champion = ModelVersion.objects.get(dataset=trained_dataset, stage="champion")
    url = reverse("governance:model_card", args=[champion.pk])

    card = login(auditor).get(url + "?format=json").json()

    for section in (
        "model_details",
        "intended_use",
        "factors",
        "metrics",
        "evaluation_data",
        "training_data",
        "quantitative_analyses",
        "ethical_considerations",
        "caveats",
        "decisions",
    ):
        assert section in card, section
    assert card["model_details"]["artifact_sha256"] == champion.artifact_sha256
    assert card["model_details"]["seed"] == champion.training_run.seed
    assert card["evaluation_data"]["holdout_rows"] == 20
    assert card["training_data"]["label_count"] == champion.snapshot.label_count
    approved = [d for d in card["decisions"] if d["status"] == "approved"]
    assert approved and approved[0]["signature"]["matches_the_record_now"] is True

    page = login(auditor).get(url).content.decode()
    assert f"Model card: <bdi>Tumours</bdi> v{champion.version}" in page
    assert "Decisions and signatures" in page and "matches the record now" in page


def test_a_changed_evaluation_shows_on_the_card_as_a_signature_that_no_longer_matches(trained_dataset, auditor):
    champion = ModelVersion.objects.get(dataset=trained_dataset, stage="champion")
    evaluation = Evaluation.objects.get(training_run=champion.training_run, role="candidate")
    Evaluation.objects.filter(pk=evaluation.pk).update(metrics={**evaluation.metrics, "accuracy": 0.123})

    card = login(auditor).get(reverse("governance:model_card", args=[champion.pk]) + "?format=json").json()
    assert card["decisions"][0]["signature"]["matches_the_record_now"] is False
    page = login(auditor).get(reverse("governance:model_card", args=[champion.pk])).content.decode()
    assert "does not match the record now" in page


def test_the_datasheet_says_where_every_label_came_from(trained_dataset, model_admin, reviewer):
    review_next(trained_dataset, reviewer)
    from tests.helpers import candidate_train

    version = candidate_train(trained_dataset, requested_by=model_admin, reason="after a review")
    sheet = login(model_admin).get(reverse("governance:datasheet", args=[version.snapshot_id]) + "?format=json").json()

    composition = sheet["composition"]
    assert composition["label_count"] == SnapshotLabel.objects.filter(snapshot=version.snapshot).count()
    assert sum(composition["label_origins"].values()) == composition["label_count"]
    assert composition["label_origins"]["review"] >= 1 and composition["reviewers"] >= 1
    # Every label's item by what first put it in front of a reviewer; those never reviewed kept their imported label.
    reviewed = composition["label_count"] - composition["items_by_group"]["not_reviewed"]
    assert sum(composition["reviewed_items_picked_by"].values()) == reviewed == composition["label_origins"]["review"]
    assert {f["name"] for f in composition["features"]} == {"radius", "texture", "lobes"}
    assert sheet["collection"]["files"] and version.version in sheet["uses"]["model_versions"]
    page = login(model_admin).get(reverse("governance:datasheet", args=[version.snapshot_id])).content.decode()
    assert "Gold labels by how they were made" in page and "seed.csv" in page
    # Five columns with long descriptions are wider than a phone: the features scroll in their own region.
    assert 'class="table-scroll" role="region" aria-labelledby="features-caption"' in page


def test_reviewers_and_strangers_cannot_read_cards_or_datasheets(trained_dataset, reviewer, outsider):
    champion = ModelVersion.objects.get(dataset=trained_dataset, stage="champion")
    for user in (reviewer, outsider):
        client = login(user)
        assert client.get(reverse("governance:model_card", args=[champion.pk])).status_code == 403
        assert client.get(reverse("governance:datasheet", args=[champion.snapshot_id])).status_code == 403


def test_every_selection_reason_a_review_may_record_has_words_for_the_pages():
    from annotations.item_search import SELECTION_STRATEGIES
    from governance.selection_words import STRATEGY_WORDS, strategy_words

    assert set(SELECTION_STRATEGIES) <= set(STRATEGY_WORDS)
    for code in (*SELECTION_STRATEGIES, "not_reviewed"):
        assert "_" not in strategy_words(code) and strategy_words(code) != code
    assert strategy_words("audit_slice") == "random audit slice"
    assert strategy_words("least_confidence") == "least confident first"
    assert strategy_words("") == "not recorded" and strategy_words("some_old_code") == "some old code"
