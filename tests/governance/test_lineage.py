"""Lineage both ways (issue 10, point 7): from any record up to its data and people, down to the models,
decisions and predictions it shaped; bounded queries; who may see it."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from annotations.models import GoldLabel, Item, Review
from governance.lineage import lineage_for_user
from governance.lineage_sections import ITEMS_PAGE
from governance.models import DataAccess, PromotionRequest
from models_app.models import Evaluation, ModelVersion, Prediction, SnapshotLabel
from tests.conftest import login
from tests.helpers import candidate_train, make_user, review_next
from workflow_site.access import Role


def _json(user: User, kind: str, pk: int) -> dict[str, Any]:
    response = login(user).get(reverse("governance:lineage", args=[kind, pk]) + "?format=json")
    assert response.status_code == 200, response.content
    return response.json()


def _section(lineage: dict[str, Any], direction: str, key: str) -> dict[str, Any]:
    found = [s for s in lineage[direction] if s["key"] == key]
    assert found, f"no {key} section {direction}: {[s['key'] for s in lineage[direction]]}"
    return found[0]


def _ids(lineage: dict[str, Any], direction: str, key: str) -> list[int]:
    return [n["id"] for n in _section(lineage, direction, key)["nodes"]]


@pytest.fixture
def champion(trained_dataset) -> ModelVersion:
    return ModelVersion.objects.get(dataset=trained_dataset, stage="champion")


@pytest.fixture
def reviewed(trained_dataset, reviewer, model_admin) -> dict[str, Any]:
    """A reviewer answers one pool item (shown v1's prediction); v2 is then trained on a snapshot holding it."""
    review = review_next(trained_dataset, reviewer)
    version = candidate_train(trained_dataset, requested_by=model_admin, reason="after a review")
    return {"review": review, "item": review.item, "v2": version}


def test_an_imported_item_walks_up_to_its_file_and_down_to_the_champion_its_decision_and_its_predictions(
    trained_dataset, champion, auditor
):
    item = SnapshotLabel.objects.filter(snapshot=champion.snapshot).order_by("item_id").first().item
    lineage = _json(auditor, "item", item.pk)

    assert lineage["node"]["kind"] == "item" and lineage["node"]["id"] == item.pk
    batch = _section(lineage, "up", "import")["nodes"][0]
    assert batch["facts"]["file_name"] == "seed.csv" and batch["facts"]["file_sha256"] == item.batch.file_sha256
    assert _section(lineage, "down", "gold_label")["nodes"][0]["facts"]["origin"] == "import"
    assert champion.snapshot_id in _ids(lineage, "down", "snapshots")
    assert _ids(lineage, "down", "model_versions") == [champion.pk]
    assert {e["facts"]["role"] for e in _section(lineage, "down", "evaluations")["nodes"]} >= {"candidate"}
    decision = _section(lineage, "down", "promotions")["nodes"][0]["facts"]
    assert decision["status"] == "approved" and decision["decided_by"] == "admin2"
    assert decision["signed_by"] and decision["signature_meaning"] == "approval" and decision["signed_at"]
    assert len(decision["signed_record_sha256"]) == 64 and decision["signature_matches_record_now"] is True
    predicted = _section(lineage, "down", "predicted_items")
    pool = Prediction.objects.filter(model_version=champion).count()
    assert predicted["counts"][f"v{champion.version}"] == {
        "model_version_id": champion.pk,
        "items": pool,
        "capped": False,
    }
    first = list(
        Prediction.objects.filter(model_version=champion).order_by("item_id").values_list("item_id", flat=True)
    )
    assert [n["id"] for n in predicted["nodes"]] == first[:ITEMS_PAGE]


def test_a_reviewed_item_shows_who_reviewed_it_why_it_was_picked_and_the_model_trained_on_it(reviewed, auditor):
    item, review, v2 = reviewed["item"], reviewed["review"], reviewed["v2"]
    lineage = _json(auditor, "item", item.pk)

    shown = _section(lineage, "down", "reviews")["nodes"][0]
    assert shown["id"] == review.pk
    assert shown["facts"]["reviewer"] == "reviewer" and shown["facts"]["guideline_version"] == review.guideline_version
    assert shown["facts"]["mode"] == "open" and shown["facts"]["selection_strategy"] == review.selection_strategy
    assert shown["facts"]["selection_score"] == review.selection_score
    assert _section(lineage, "down", "gold_label")["nodes"][0]["facts"]["review"] == review.pk
    assert [p["facts"]["model_version"] for p in _section(lineage, "down", "predictions")["nodes"]] == [1]
    assert _ids(lineage, "down", "snapshots") == [v2.snapshot_id]
    assert _ids(lineage, "down", "model_versions") == [v2.pk]
    assert {e["facts"]["training_run"] for e in _section(lineage, "down", "evaluations")["nodes"]} == {
        v2.training_run_id
    }
    # The champion v2 was compared with is named by its number too, not by its primary key.
    labels = sorted(e["label"].split(" on ")[0] for e in _section(lineage, "down", "evaluations")["nodes"])
    assert labels == ["v1 as champion", "v2 as candidate"]


def test_a_prediction_walks_up_to_its_model_and_data_and_down_to_the_reviews_that_saw_it(reviewed, auditor, champion):
    review = reviewed["review"]
    lineage = _json(auditor, "prediction", review.shown_prediction_id)

    assert _ids(lineage, "up", "item") == [review.item_id]
    assert _ids(lineage, "up", "model_version") == [champion.pk]
    assert _ids(lineage, "up", "training_run") == [champion.training_run_id]
    assert _ids(lineage, "up", "snapshot") == [champion.snapshot_id]
    assert _ids(lineage, "down", "reviews") == [review.pk]
    assert _ids(lineage, "down", "gold_label") == [GoldLabel.objects.get(item=review.item).pk]


def test_a_review_walks_up_to_what_it_was_shown_and_down_to_the_models_its_label_trained(reviewed, auditor):
    review, v2 = reviewed["review"], reviewed["v2"]
    lineage = _json(auditor, "review", review.pk)

    assert _ids(lineage, "up", "item") == [review.item_id]
    assert _ids(lineage, "up", "predictions") == [review.shown_prediction_id]
    assert _ids(lineage, "down", "gold_label") == [GoldLabel.objects.get(item=review.item).pk]
    assert _ids(lineage, "down", "snapshots") == [v2.snapshot_id]
    assert _ids(lineage, "down", "model_versions") == [v2.pk]


def test_a_gold_label_walks_up_to_its_review_and_down_to_its_snapshots(reviewed, auditor):
    review, v2 = reviewed["review"], reviewed["v2"]
    gold = GoldLabel.objects.get(item=review.item)
    lineage = _json(auditor, "gold-label", gold.pk)

    assert _ids(lineage, "up", "review") == [review.pk]
    assert _section(lineage, "up", "import")["nodes"][0]["facts"]["file_name"] == "pool.csv"
    assert _ids(lineage, "down", "snapshots") == [v2.snapshot_id]
    assert _ids(lineage, "down", "model_versions") == [v2.pk]


def test_a_snapshot_a_run_and_a_version_walk_up_to_their_labels_and_down_to_their_decisions(
    trained_dataset, champion, auditor
):
    snapshot = _json(auditor, "snapshot", champion.snapshot_id)
    labelled = _section(snapshot, "up", "snapshot_items")
    assert labelled["total"] == champion.snapshot.label_count
    assert (
        labelled["nodes"][0]["id"]
        == SnapshotLabel.objects.filter(snapshot=champion.snapshot).order_by("item_id")[0].item_id
    )
    assert _ids(snapshot, "down", "training_runs") == [champion.training_run_id]
    assert _ids(snapshot, "down", "model_versions") == [champion.pk]

    run = _json(auditor, "training-run", champion.training_run_id)
    assert _ids(run, "up", "snapshot") == [champion.snapshot_id]
    assert _section(run, "up", "triggers")["nodes"][0]["facts"]["kind"] == "seed"
    assert _ids(run, "down", "model_versions") == [champion.pk]

    version = _json(auditor, "model-version", champion.pk)
    assert _ids(version, "up", "training_run") == [champion.training_run_id]
    assert [s["key"] for s in version["down"]] == ["evaluations", "promotions", "predicted_items"]
    promotion = PromotionRequest.objects.get(model_version=champion)
    assert _ids(version, "down", "promotions") == [promotion.pk]


def test_a_promotion_walks_up_to_its_version_and_shows_its_signature(trained_dataset, champion, auditor):
    promotion = PromotionRequest.objects.get(model_version=champion)
    lineage = _json(auditor, "promotion", promotion.pk)

    assert lineage["node"]["facts"]["signed_by"] == promotion.signature.printed_name
    assert lineage["node"]["facts"]["signed_record_sha256"] == promotion.signature.record_hash
    assert _ids(lineage, "up", "model_version") == [champion.pk]
    assert _ids(lineage, "up", "snapshot") == [champion.snapshot_id]
    assert _section(lineage, "down", "predicted_items")["nodes"]


def test_a_changed_evaluation_shows_as_a_signature_that_no_longer_matches(trained_dataset, champion, auditor):
    evaluation = Evaluation.objects.get(training_run=champion.training_run, role="candidate")
    Evaluation.objects.filter(pk=evaluation.pk).update(metrics={**evaluation.metrics, "accuracy": 0.123})
    promotion = PromotionRequest.objects.get(model_version=champion)

    assert _json(auditor, "promotion", promotion.pk)["node"]["facts"]["signature_matches_record_now"] is False


def test_every_link_on_an_items_lineage_page_opens(trained_dataset, champion, auditor):
    item = SnapshotLabel.objects.filter(snapshot=champion.snapshot).order_by("item_id").first().item
    client = login(auditor)
    lineage = _json(auditor, "item", item.pk)
    urls = {n["url"] for s in lineage["up"] + lineage["down"] for n in s["nodes"]}
    assert len(urls) > 5
    for url in sorted(urls):
        assert client.get(url).status_code == 200, url


def test_the_page_is_accessible_markup_with_real_links_and_no_item_data(trained_dataset, champion, auditor):
    item = SnapshotLabel.objects.filter(snapshot=champion.snapshot).order_by("item_id").first().item
    html = login(auditor).get(reverse("governance:lineage", args=["item", item.pk])).content.decode()

    assert '<h1 id="lineage-title">' in html and '<h2 id="up-title">' in html and '<h2 id="down-title">' in html
    assert '<th scope="col">File sha256</th>' in html
    # The section and its table's scroll region are two landmarks: each has its own name.
    assert '<section aria-labelledby="up-import-title"' in html and '<h3 id="up-import-title">Import batch' in html
    assert 'role="region" aria-labelledby="up-import-caption"' in html
    assert '<caption class="sr-only" id="up-import-caption">Import batch: records</caption>' in html
    assert f'href="{reverse("governance:lineage", args=["model-version", champion.pk])}"' in html
    assert f'href="{reverse("governance:item_history", args=[item.pk])}"' in html
    # No feature value on the page, so no read of item data is logged (the item history logs its own).
    assert f"<bdi>{item.values['radius']}</bdi>" not in html
    assert not DataAccess.objects.filter(item_id=item.pk).exists()


def test_the_pages_that_show_a_record_link_to_its_lineage(trained_dataset, champion, auditor):
    client = login(auditor)
    promotion = PromotionRequest.objects.get(model_version=champion)
    item = Item.objects.filter(dataset=trained_dataset).first()
    for page, kind, pk in [
        (reverse("governance:item_history", args=[item.pk]), "item", item.pk),
        (reverse("governance:model_card", args=[champion.pk]), "model-version", champion.pk),
        (reverse("governance:promotion_detail", args=[promotion.pk]), "promotion", promotion.pk),
        (reverse("models_app:run_detail", args=[champion.training_run_id]), "training-run", champion.training_run_id),
    ]:
        assert reverse("governance:lineage", args=[kind, pk]) in client.get(page).content.decode(), page


# --- who may see it ---------------------------------------------------------------------------------


def test_auditors_and_the_datasets_model_admins_see_lineage_reviewers_and_strangers_get_403(
    trained_dataset, champion, auditor, model_admin, reviewer, outsider
):
    stranger_admin = make_user("other-admin", Role.MODEL_ADMIN)  # a model admin of no dataset
    item = Item.objects.filter(dataset=trained_dataset).first()
    for kind, pk in [("item", item.pk), ("model-version", champion.pk), ("snapshot", champion.snapshot_id)]:
        url = reverse("governance:lineage", args=[kind, pk])
        assert login(auditor).get(url).status_code == 200
        assert login(model_admin).get(url).status_code == 200
        for user in (reviewer, outsider, stranger_admin):
            assert login(user).get(url).status_code == 403, (kind, user)
            assert login(user).get(url + "?format=json").status_code == 403, (kind, user)


@pytest.mark.parametrize(
    "kind", ["item", "prediction", "review", "gold-label", "snapshot", "training-run", "model-version", "promotion"]
)
def test_a_missing_record_is_a_404_for_an_auditor(kind, auditor):
    assert login(auditor).get(reverse("governance:lineage", args=[kind, 999999])).status_code == 404


def test_an_unknown_kind_is_a_404(auditor):
    assert login(auditor).get(reverse("governance:lineage", args=["user", 1])).status_code == 404


def test_a_prediction_review_or_gold_label_of_another_dataset_is_a_403(reviewed, outsider):
    stranger_admin = make_user("other-admin", Role.MODEL_ADMIN)
    review = reviewed["review"]
    for kind, pk in [
        ("prediction", review.shown_prediction_id),
        ("review", review.pk),
        ("gold-label", GoldLabel.objects.get(item=review.item).pk),
    ]:
        assert login(stranger_admin).get(reverse("governance:lineage", args=[kind, pk])).status_code == 403


# --- bounded queries ----------------------------------------------------------------------------------


def _fresh(user: User) -> User:
    return User.objects.get(pk=user.pk)  # its roles not cached yet: the role query is counted too


# Queries per start kind for an auditor: the role check, the record, one per section.
QUERIES = {
    "item": 11,
    "prediction": 4,
    "review": 10,
    "gold-label": 8,
    "snapshot": 10,
    "training-run": 9,
    "model-version": 7,
    "promotion": 7,
}


def test_each_kind_costs_a_fixed_number_of_queries(reviewed, auditor, champion, django_assert_num_queries):
    review = reviewed["review"]
    promotion = PromotionRequest.objects.get(model_version=champion)
    starts = {
        "item": review.item_id,
        "prediction": review.shown_prediction_id,
        "review": review.pk,
        "gold-label": GoldLabel.objects.get(item=review.item).pk,
        "snapshot": champion.snapshot_id,
        "training-run": champion.training_run_id,
        "model-version": champion.pk,
        "promotion": promotion.pk,
    }
    for kind, pk in starts.items():
        user = _fresh(auditor)
        with django_assert_num_queries(QUERIES[kind]):
            lineage_for_user(user=user, kind=kind, pk=pk)


def test_more_reviews_predictions_and_versions_cost_no_more_queries(
    reviewed, reviewer2, auditor, model_admin, django_assert_num_queries
):
    item = reviewed["item"]
    user = _fresh(auditor)
    with django_assert_num_queries(QUERIES["item"]):
        lineage_for_user(user=user, kind="item", pk=item.pk)
    # A second review (overlap), a third version trained on it, and its predictions of every open item.
    Review.objects.create(
        item=item,
        reviewer=reviewer2,
        decision="accept",
        label=reviewed["review"].label,
        selection_strategy="audit_slice",
        guideline_version="1",
    )
    from models_app.prediction import open_item_ids, predictions_create

    v3 = candidate_train(item.dataset, requested_by=model_admin, reason="again")
    predictions_create(model_version=v3, item_ids=open_item_ids(item.dataset_id) + [item.pk], update_items=False)

    user = _fresh(auditor)
    with django_assert_num_queries(QUERIES["item"]):
        lineage = lineage_for_user(user=user, kind="item", pk=item.pk)
    down = {s.key: s for s in lineage.down}
    assert len(down["reviews"].nodes) == 2 and len(down["model_versions"].nodes) == 2
    assert len(down["predictions"].nodes) == 2


def test_the_json_has_one_shape_for_every_node(trained_dataset, champion, auditor):
    lineage = _json(auditor, "model-version", champion.pk)
    assert set(lineage) == {"node", "dataset", "up", "down"}
    assert lineage["dataset"] == {"id": trained_dataset.pk, "name": trained_dataset.name}
    for section in lineage["up"] + lineage["down"]:
        assert {"key", "title", "nodes", "more", "total", "note"} <= set(section)
        for node in section["nodes"]:
            assert set(node) == {"kind", "id", "label", "url", "page_url", "facts"}
            assert isinstance(node["id"], int) and node["label"] and node["url"].startswith("/")


def test_the_page_and_json_of_items_cost_the_same_queries_whatever_they_went_into(
    reviewed, champion, auditor, django_assert_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = login(auditor)
    # An imported item in both snapshots (two versions, no review, no prediction) against the reviewed one.
    plain = SnapshotLabel.objects.filter(snapshot=champion.snapshot).order_by("item_id").first().item
    for suffix in ("", "?format=json"):
        with CaptureQueriesContext(connection) as few:
            assert client.get(reverse("governance:lineage", args=["item", plain.pk]) + suffix).status_code == 200
        with django_assert_num_queries(len(few.captured_queries)):
            client.get(reverse("governance:lineage", args=["item", reviewed["item"].pk]) + suffix)


def test_the_api_gives_a_program_the_walk_the_page_gives_a_person(reviewed, auditor, reviewer):
    from django.test import Client

    from governance.credentials import api_token_create

    _, secret = api_token_create(user=auditor, name="lineage reader", days=1)
    client = Client(HTTP_AUTHORIZATION=f"Token {secret}")
    review = reviewed["review"]
    for kind, pk in [("review", review.pk), ("item", review.item_id), ("model-version", reviewed["v2"].pk)]:
        response = client.get(f"/api/lineage/{kind}/{pk}/")
        assert response.status_code == 200, (kind, response.content[:300])
        assert response.json() == _json(auditor, kind, pk)
    assert client.get("/api/lineage/no-such-kind/1/").status_code == 404
    _, reviewer_secret = api_token_create(user=reviewer, name="not mine to read", days=1)
    refused = Client(HTTP_AUTHORIZATION=f"Token {reviewer_secret}").get(f"/api/lineage/review/{review.pk}/")
    assert refused.status_code == 403
