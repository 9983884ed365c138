"""The audit list names objects as people know them and shows compact changes (issue 6, defect 14)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from annotations.models import DatasetMembership, Feature, ImportBatch, Item, LabelClass
from governance.audit import audit_record
from governance.audit_labels import audit_object_labels
from governance.models import AuditEvent, PromotionRequest
from models_app.models import DatasetSnapshot, ModelVersion, RetrainingPolicy
from tests.conftest import login


def _record(object_type: str, object_id: object, dataset_id: int | None = None, **fields: object) -> AuditEvent:
    with transaction.atomic():
        return audit_record(
            actor=None,
            actor_username="tester",
            action="test.named",
            object_type=object_type,
            object_id=object_id,
            dataset_id=dataset_id,
            **fields,
        )


def _one_of_each_kind(dataset) -> dict[str, AuditEvent]:  # type: ignore[no-untyped-def]
    """An event about one record of every kind the trail names, in the trained dataset."""
    item = Item.objects.filter(dataset=dataset).order_by("pk").first()
    version = ModelVersion.objects.get(dataset=dataset, version=1)
    admin = User.objects.get(username="admin1")
    membership = DatasetMembership.objects.filter(dataset=dataset, user=admin).get()
    records = {
        "item": item,
        "import_batch": ImportBatch.objects.filter(dataset=dataset, file_name="pool.csv").get(),
        "model_version": version,
        "training_run": version.training_run,
        "dataset_snapshot": DatasetSnapshot.objects.filter(dataset=dataset).first(),
        "retraining_policy": RetrainingPolicy.objects.get(dataset=dataset),
        "promotion_request": PromotionRequest.objects.get(model_version=version),
        "user": admin,
        "token": admin,
        "group": Group.objects.get(name="model_admin"),
        "dataset": dataset,
        "feature": Feature.objects.get(dataset=dataset, name="radius"),
        "labelclass": LabelClass.objects.get(dataset=dataset, name="benign"),
        "datasetmembership": membership,
    }
    return {kind: _record(kind, obj.pk, dataset.pk) for kind, obj in records.items()}


def test_every_kind_of_object_is_named_as_people_know_it(trained_dataset):
    events = _one_of_each_kind(trained_dataset)
    item = Item.objects.get(pk=events["item"].object_id)
    promotion = PromotionRequest.objects.get(pk=events["promotion_request"].object_id)
    run_id = ModelVersion.objects.get(pk=events["model_version"].object_id).training_run_id

    labels = audit_object_labels(list(events.values()))
    text = {kind: labels[(e.object_type, e.object_id)].text for kind, e in events.items()}

    assert text == {
        "item": f"item {item.external_id} in Tumours",
        "import_batch": f"import #{events['import_batch'].object_id} pool.csv in Tumours",
        "model_version": "model v1 in Tumours",
        "training_run": f"training run {run_id} in Tumours",
        "dataset_snapshot": f"training snapshot {events['dataset_snapshot'].object_id} in Tumours",
        "retraining_policy": "retraining policy in Tumours",
        "promotion_request": f"promotion request #{promotion.pk} (v1) in Tumours",
        "user": "user admin1",
        "token": "API token of admin1",
        "group": "role model_admin",
        "dataset": "dataset Tumours",
        "feature": "feature radius in Tumours",
        "labelclass": "label benign in Tumours",
        "datasetmembership": "membership of admin1 in Tumours",
    }
    assert labels[("item", str(item.pk))].url == reverse("governance:item_history", args=[item.pk])
    assert labels[("model_version", events["model_version"].object_id)].url == reverse(
        "models_app:run_detail", args=[run_id]
    )


def test_a_record_deleted_since_its_event_is_named_from_the_event(trained_dataset):
    gone = _record("feature", 999_999, trained_dataset.pk, before={"name": "perimeter", "dtype": "float"})
    nameless = _record("widget", "w-1")

    labels = audit_object_labels([gone, nameless])

    assert labels[("feature", "999999")].text == "feature perimeter in Tumours"
    assert labels[("widget", "w-1")].text == "widget w-1"


def test_a_narrative_is_named_in_words(trained_dataset):
    # Its writes, its signatures and a failed signing all name it by its record type (governance/narratives.py).
    event = _record("document_narrative", 7, trained_dataset.pk)

    assert audit_object_labels([event])[("document_narrative", "7")].text == "narrative 7 in Tumours"


def test_naming_a_page_of_every_kind_is_one_query(trained_dataset, django_assert_num_queries):
    events = list(_one_of_each_kind(trained_dataset).values())

    with django_assert_num_queries(1):
        audit_object_labels(events)
    with django_assert_num_queries(0):
        audit_object_labels([])


def test_the_audit_list_costs_the_same_queries_for_one_kind_of_object_as_for_every_kind(
    trained_dataset, auditor, django_assert_num_queries
):
    _one_of_each_kind(trained_dataset)
    for n in range(50):
        _record("item", Item.objects.filter(dataset=trained_dataset).order_by("pk")[n % 20].pk, trained_dataset.pk)
    client = login(auditor)
    with CaptureQueriesContext(connection) as one_kind:
        response = client.get(reverse("governance:audit_list"), {"action": "promotion.approved"})
    assert len(response.context["rows"]) == 1

    # A full page of 50 events naming every kind of object: no query more, but for checking the signatures it
    # records (one query for the signatures, two per kind of signed record: model versions, promotion requests).
    with CaptureQueriesContext(connection) as full_page:
        full = client.get(reverse("governance:audit_list"))
    assert len(full.context["rows"]) == 50
    assert abs(len(full_page) - len(one_kind)) <= 1 + 2 * 2


def test_the_audit_list_names_items_by_external_id_and_dataset_and_links_their_history(trained_dataset, auditor):
    item = Item.objects.filter(dataset=trained_dataset).order_by("pk").first()
    _record("item", item.pk, trained_dataset.pk, before={"gold_label": None}, after={"label": "benign"})

    html = login(auditor).get(reverse("governance:audit_list"), {"action": "test.named"}).content.decode()

    history = reverse("governance:item_history", args=[item.pk])
    assert f'item <a href="{history}"><bdi>{item.external_id}</bdi></a>' in html
    assert "in <bdi>Tumours</bdi>" in html
    assert f"item {item.pk}<" not in html


def test_the_audit_list_shows_what_changed_not_the_json(trained_dataset, auditor):
    policy = RetrainingPolicy.objects.get(dataset=trained_dataset)
    _record(
        "retraining_policy",
        policy.pk,
        trained_dataset.pk,
        before={"enabled": True, "new_gold_labels": 20},
        after={"enabled": True, "new_gold_labels": 50},
    )

    html = login(auditor).get(reverse("governance:audit_list"), {"action": "test.named"}).content.decode()

    assert "<code><bdi>20</bdi></code> → <code><bdi>50</bdi></code>" in html
    assert '<span class="diff-key"><bdi>new_gold_labels</bdi></span>' in html
    assert "enabled" not in html.split('class="change"')[1]  # unchanged: not shown
    assert "{&quot;" not in html  # no JSON blobs


def test_a_long_value_is_short_in_the_row_and_whole_behind_a_disclosure(trained_dataset, auditor):
    sha = "0123456789abcdef" * 4
    _record("dataset_snapshot", 999_998, trained_dataset.pk, after={"content_hash": sha})

    html = login(auditor).get(reverse("governance:audit_list"), {"action": "test.named"}).content.decode()

    assert f'<details class="value"><summary><code><bdi>{sha[:23]}…</bdi></code></summary>' in html
    assert f'<code class="full"><bdi>{sha}</bdi></code></details>' in html


def test_more_changes_than_fit_are_counted_and_kept_behind_a_disclosure(trained_dataset, auditor):
    _record("dataset", trained_dataset.pk, trained_dataset.pk, after={f"field{n}": n for n in range(7)})

    html = login(auditor).get(reverse("governance:audit_list"), {"action": "test.named"}).content.decode()

    assert '<details class="diff-more"><summary>4 more changes</summary>' in html
    assert "<bdi>field6</bdi>" in html


def test_the_audit_api_names_each_object_as_people_know_it(trained_dataset, auditor):
    item = Item.objects.filter(dataset=trained_dataset).order_by("pk").first()
    _record("item", item.pk, trained_dataset.pk)

    body = login(auditor).get("/api/audit-events/", {"action": "test.named"}).json()

    assert [(e["object_id"], e["object_label"]) for e in body["results"]] == [
        (str(item.pk), f"item {item.external_id} in Tumours")
    ]


@pytest.mark.parametrize("hidden", ["\u202e", "\u200b", "\u2066"])
def test_an_item_id_with_a_hidden_character_is_shown_with_a_marker_on_the_audit_list(trained_dataset, auditor, hidden):
    item = Item.objects.filter(dataset=trained_dataset).order_by("pk").first()
    Item.objects.filter(pk=item.pk).update(external_id=f"abc{hidden}gpj")
    _record("item", item.pk, trained_dataset.pk, after={"external_id": f"abc{hidden}gpj"}, reason=f"why{hidden}")

    html = login(auditor).get(reverse("governance:audit_list"), {"action": "test.named"}).content.decode()

    assert hidden not in html
    marker = f"⟨U+{ord(hidden):04X}⟩"
    assert html.count(marker) == 3  # the object's name, the value in the change, the reason
