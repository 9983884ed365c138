"""The API for the data path (issue 7, point 5): create a dataset with its schema, list items, export."""

from __future__ import annotations

import json

import pytest

from annotations.models import Dataset, DatasetMembership, Item
from governance.models import AuditEvent, DataAccess
from tests.helpers import login, make_user
from workflow_site.access import Role

SCHEMA = {
    "name": "Sepsis screen",
    "slug": "sepsis",
    "guideline_version": "2026-11",
    "reason_codes": [{"code": "missed-lactate", "text": "A raised lactate was missed"}],
    "features": [
        {"name": "lactate", "unit": "mmol/L", "normal_min": 0.5, "normal_max": 2.2, "description": "Serum lactate"},
        {"name": "ward", "dtype": "category", "categories": ["ICU", "ED"], "is_sensitive": False},
        {"name": "age", "dtype": "integer", "is_sensitive": True},
    ],
    "labels": [{"name": "sepsis", "display_name": "Sepsis"}, {"name": "no_sepsis"}],
}


def _post(client, body):  # type: ignore[no-untyped-def]
    return client.post("/api/datasets/", json.dumps(body), content_type="application/json")


def test_a_model_admin_creates_a_dataset_with_its_schema_and_works_on_it(db):
    admin = make_user("creator", Role.MODEL_ADMIN)

    response = _post(login(admin), SCHEMA)

    assert response.status_code == 201, response.content
    dataset = Dataset.objects.get(slug="sepsis")
    assert response.json() == {
        "id": dataset.pk,
        "name": "Sepsis screen",
        "slug": "sepsis",
        "guideline_version": "2026-11",
        "reason_codes": [{"code": "missed-lactate", "text": "A raised lactate was missed"}],
    }
    features = list(
        dataset.features.order_by("position").values_list("name", "dtype", "unit", "normal_max", "is_sensitive")
    )
    assert features == [
        ("lactate", "float", "mmol/L", 2.2, False),
        ("ward", "category", "", None, False),
        ("age", "integer", "", None, True),
    ]
    assert list(dataset.label_classes.order_by("position").values_list("name", flat=True)) == ["sepsis", "no_sepsis"]
    assert DatasetMembership.objects.filter(dataset=dataset, user=admin).exists()
    event = AuditEvent.objects.get(action="dataset.created")
    assert event.actor == admin and event.dataset_id == dataset.pk
    assert event.after["labels"] == ["sepsis", "no_sepsis"]


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        (lambda s: s["features"][1].update(categories=[]), "features[1].categories", "at least one allowed value"),
        (lambda s: s["features"][0].update(normal_min=3, normal_max=1), "features[0]", "normal"),
        (lambda s: s["features"][2].update(name="lactate"), "features[2].name", "appears twice"),
        (lambda s: s["features"][2].update(name="label"), "features[2].name", "reserved"),
        (lambda s: s["features"][0].update(dtype="complex"), "features[0].dtype", "not a valid choice"),
        (lambda s: s.update(labels=[{"name": "only"}]), "labels", "at least two"),
        (lambda s: s.update(features=[]), "features", "at least one"),
        (lambda s: s.update(slug="not a slug!"), "slug", "slug"),
        (lambda s: s["features"][1].update(categories=["ICU", None]), "features[1].categories[1]", "not be null"),
        (lambda s: s.update(labels="yes,no"), "labels", "a list of label classes"),
        (lambda s: s.update(reason_codes=[{"code": "Bad code", "text": "x"}]), "reason_codes[0]", "lower-case"),
        (lambda s: s.update(reason_codes="margin"), "reason_codes", "a list of"),
    ],
)
def test_a_bad_schema_names_the_field_and_creates_nothing(db, change, field, words):
    admin = make_user("creator", Role.MODEL_ADMIN)
    body = json.loads(json.dumps(SCHEMA))
    change(body)

    response = _post(login(admin), body)

    assert response.status_code == 400, response.content
    errors = response.json()
    text = json.dumps(errors).lower()
    assert field in text or any(key.startswith(field) for key in errors), errors
    assert words.lower() in text, errors
    assert not Dataset.objects.filter(slug=body["slug"]).exists()
    assert not AuditEvent.objects.filter(action="dataset.created").exists()


def test_a_name_in_use_is_refused(db):
    admin = make_user("creator", Role.MODEL_ADMIN)
    client = login(admin)
    assert _post(client, SCHEMA).status_code == 201
    response = _post(client, {**SCHEMA, "slug": "sepsis-2"})
    assert response.status_code == 400
    assert "name" in response.json()


@pytest.mark.parametrize("roles", [(Role.REVIEWER,), (Role.AUDITOR,), ()])
def test_only_model_admins_create_datasets(db, roles):
    user = make_user("someone", *roles)
    assert _post(login(user), SCHEMA).status_code == 403
    assert not Dataset.objects.exists()


def test_items_page_by_key_with_filters_and_the_reads_are_logged(trained_dataset, model_admin):
    client = login(model_admin)
    open_items = Item.objects.filter(dataset=trained_dataset, queue_state="open").order_by("pk")
    seen, after = [], None
    while True:
        params = {"queue_state": "open", "limit": 7, **({"after": after} if after else {})}
        page = client.get(f"/api/datasets/{trained_dataset.pk}/items/", params).json()
        seen += [item["id"] for item in page["items"]]
        after = page["next_after"]
        if after is None:
            break
    assert seen == list(open_items.values_list("pk", flat=True))
    assert DataAccess.objects.filter(user=model_admin, purpose="api").count() == len(seen)

    unsure = client.get(f"/api/datasets/{trained_dataset.pk}/items/", {"max_confidence": 0.6, "limit": 500}).json()
    assert {i["id"] for i in unsure["items"]} == set(
        Item.objects.filter(dataset=trained_dataset, predicted_confidence__lte=0.6).values_list("pk", flat=True)
    )


def test_the_item_list_takes_constant_queries_per_page(trained_dataset, model_admin, django_assert_max_num_queries):
    client = login(model_admin)
    with django_assert_max_num_queries(12):
        response = client.get(f"/api/datasets/{trained_dataset.pk}/items/", {"limit": 500})
    assert len(response.json()["items"]) == Item.objects.filter(dataset=trained_dataset).count()


def test_a_bad_filter_is_a_400_naming_it(trained_dataset, model_admin):
    response = login(model_admin).get(f"/api/datasets/{trained_dataset.pk}/items/", {"max_confidence": "lots"})
    assert response.status_code == 400
    assert "max_confidence" in response.json()


def test_a_reviewer_with_no_answers_lists_no_items(trained_dataset, reviewer):
    # As on the items page, a reviewer sees only the items they answered.
    response = login(reviewer).get(f"/api/datasets/{trained_dataset.pk}/items/")
    assert response.status_code == 200 and response.json()["items"] == []


def test_export_through_the_api_is_the_same_file_and_audited(trained_dataset, model_admin):
    client = login(model_admin)
    api = client.get(f"/api/datasets/{trained_dataset.pk}/export/", {"kind": "items", "file_format": "csv"})
    page = client.get(f"/models/datasets/{trained_dataset.pk}/export/", {"kind": "items", "format": "csv"})
    assert api.status_code == page.status_code == 200
    assert b"".join(api.streaming_content) == b"".join(page.streaming_content)
    assert AuditEvent.objects.filter(action="export.created").count() == 2
    missing = client.get(f"/api/datasets/{trained_dataset.pk}/export/", {"kind": "snapshot"})
    assert missing.status_code == 400 and "snapshot" in missing.json()
