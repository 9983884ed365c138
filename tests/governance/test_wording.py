"""One fact, one wording: a training run's trigger reads the same on the model card as on the run page and in the
lineage (the model's TextChoices labels), and a count of one is singular ("1 row", not "1 rows")."""

from __future__ import annotations

import re

from django.template.loader import render_to_string
from django.urls import reverse

from models_app.models import ModelVersion, TrainingRun, TrainingTrigger
from tests.helpers import login


def _started_by_hand(champion: ModelVersion, admin) -> TrainingTrigger:  # type: ignore[no-untyped-def]
    """A person's request to train, folded into the champion's run (no training needed for the wording)."""
    return TrainingTrigger.objects.create(
        dataset=champion.dataset,
        kind=TrainingRun.Trigger.MANUAL,
        requested_by=admin,
        reason="new guideline",
        run=champion.training_run,
    )


def _model_details(html: str) -> str:
    found = re.search(r"<h2>Model details</h2>.*?</dl>", html, re.S)
    assert found, html
    return found.group(0)


def test_the_model_card_names_a_trigger_in_the_words_of_the_run_page(trained_dataset, model_admin):
    champion = ModelVersion.objects.get(dataset=trained_dataset, stage="champion")
    _started_by_hand(champion, model_admin)
    client = login(model_admin)

    details = _model_details(client.get(reverse("governance:model_card", args=[champion.pk])).content.decode())
    run_page = client.get(reverse("models_app:run_detail", args=[champion.training_run_id])).content.decode()

    assert "Started by hand (<bdi>new guideline</bdi>)" in details
    assert "Initial model" in details  # the world's first run was seeded
    assert "manual" not in details and "seed;" not in details
    assert "<dt>Triggers</dt>" in details  # two of them
    assert "Started by hand" in run_page  # the same words as the card


def test_the_model_card_json_keeps_the_stored_kind_beside_its_words(trained_dataset, model_admin):
    champion = ModelVersion.objects.get(dataset=trained_dataset, stage="champion")
    _started_by_hand(champion, model_admin)

    card = login(model_admin).get(reverse("governance:model_card", args=[champion.pk]) + "?format=json").json()

    manual = [t for t in card["model_details"]["triggers"] if t["kind"] == "manual"]
    assert [(t["kind_label"], t["reason"]) for t in manual] == [("Started by hand", "new guideline")]


def test_one_trigger_is_a_trigger(trained_dataset, model_admin):
    champion = ModelVersion.objects.get(dataset=trained_dataset, stage="champion")
    assert champion.training_run.triggers.count() == 1

    details = _model_details(
        login(model_admin).get(reverse("governance:model_card", args=[champion.pk])).content.decode()
    )

    assert "<dt>Trigger</dt><dd>Initial model" in details


def test_a_verification_of_one_event_says_one_event():
    html = render_to_string(
        "governance/audit_list.html#verify",
        {"verified": True, "checked": 1, "checkpoints": 1, "tombstones": 1, "broken": None, "problems": []},
    )

    assert "Chain verified: 1 event, no broken link; 1 signed checkpoint verified." in html
    assert "1 event had its payload removed" in html


def test_a_snapshot_of_one_imported_label_says_one_label():
    html = render_to_string(
        "governance/includes/labelled_by.html",
        {"s": {"label_count": 1, "reviewers": 0, "adjudicators": 0, "guideline_versions": []}, "imported": 1},
    )

    assert "All 1 label was imported with the data" in html


def test_a_holdout_of_one_item_is_singular():
    comparison = render_to_string("includes/champion_comparison.html", {"comparison": {"holdout_size": 1}})

    assert "sequestered holdout of 1 item" in comparison and "1 items" not in comparison
