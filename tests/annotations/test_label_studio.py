"""Label Studio's JSON tasks, out and in (issue 7, point 4): a team can move its work between the two."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from annotations.models import Dataset, Feature, GoldLabel, Item, LabelClass
from annotations.queue import queue_next_item
from annotations.services import ImportRejected, import_batch_create, review_submit
from tests.helpers import answer_for, login, make_user
from workflow_site.access import Role


def _export(client, dataset) -> list[dict]:  # type: ignore[no-untyped-def]
    response = client.get(reverse("models_app:export", args=[dataset.pk]), {"kind": "labelstudio", "format": "csv"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    return json.loads(b"".join(response.streaming_content))


def _copy_of(dataset: Dataset) -> Dataset:
    copy = Dataset.objects.create(name="Tumours again", slug="tumours-again")
    for feature in dataset.features.order_by("position"):
        Feature.objects.create(
            dataset=copy,
            position=feature.position,
            name=feature.name,
            dtype=feature.dtype,
            categories=feature.categories,
        )
    for label in dataset.label_classes.order_by("position"):
        LabelClass.objects.create(dataset=copy, position=label.position, name=label.name)
    return copy


def test_every_item_is_a_task_with_its_prediction_and_its_reviews(trained_dataset, reviewer, model_admin):
    queued = queue_next_item(dataset=trained_dataset, reviewer=reviewer)
    review = review_submit(item_id=queued.item.pk, reviewer=reviewer, answer=answer_for(queued.item, accept=False))

    tasks = _export(login(model_admin), trained_dataset)

    assert len(tasks) == Item.objects.filter(dataset=trained_dataset).count()
    task = next(t for t in tasks if t["data"]["external_id"] == queued.item.external_id)
    assert task["data"]["radius"] == queued.item.values["radius"]
    assert task["predictions"][0]["result"][0]["value"]["choices"] == [queued.item.predicted_label.name]
    assert task["predictions"][0]["score"] == pytest.approx(queued.item.predicted_confidence)
    assert task["annotations"][0]["result"][0]["value"]["choices"] == [review.label.name]
    assert task["meta"]["loupe"]["reviews"][0]["reviewer"] == "reviewer"
    assert task["meta"]["loupe"]["gold_label"] == review.label.name


def test_an_export_imported_into_a_fresh_dataset_gives_the_same_items_and_labels(trained_dataset, model_admin):
    tasks = _export(login(model_admin), trained_dataset)
    pool = [t for t in tasks if t["meta"]["loupe"]["queue_state"] != "holdout"]
    copy = _copy_of(trained_dataset)
    admin = make_user("copier", Role.MODEL_ADMIN, dataset=copy)

    batch = import_batch_create(
        dataset=copy, user=admin, file_name="from-label-studio.json", data=json.dumps(pool).encode(), purpose="review"
    )

    assert batch.rows_imported == len(pool)
    originals = Item.objects.filter(dataset=trained_dataset).exclude(queue_state="holdout")
    assert {i.external_id: i.values for i in Item.objects.filter(dataset=copy)} == {
        i.external_id: i.values for i in originals
    }
    gold = dict(GoldLabel.objects.filter(dataset=copy).values_list("item__external_id", "label__name"))
    assert gold == dict(
        GoldLabel.objects.filter(dataset=trained_dataset)
        .exclude(item__queue_state="holdout")
        .values_list("item__external_id", "label__name")
    )


def test_a_file_made_by_label_studio_takes_the_last_annotation_that_was_not_cancelled(dataset, model_admin):
    tasks = [
        {
            "id": 7,
            "data": {"radius": 12.5, "texture": 20, "lobes": 3},
            "annotations": [
                {"result": [{"type": "choices", "value": {"choices": ["benign"]}}], "was_cancelled": False},
                {"result": [{"type": "choices", "value": {"choices": ["malignant"]}}], "was_cancelled": False},
                {"result": [], "was_cancelled": True},
            ],
        },
        {"id": 8, "data": {"radius": 9, "texture": 11.5, "lobes": 2}, "predictions": []},
    ]

    import_batch_create(
        dataset=dataset, user=model_admin, file_name="ls.json", data=json.dumps(tasks).encode(), purpose="review"
    )

    items = {i.external_id: i for i in Item.objects.filter(dataset=dataset)}
    assert set(items) == {"ls-7", "ls-8"}
    assert items["ls-7"].gold_label.label.name == "malignant"
    assert not GoldLabel.objects.filter(item=items["ls-8"]).exists()


def test_a_bad_value_in_a_task_is_reported_by_line_and_column(dataset, model_admin):
    tasks = [
        {"id": 1, "data": {"radius": 12, "texture": 3, "lobes": 2}},
        {"id": 2, "data": {"radius": "big", "texture": 3, "lobes": 2}},
    ]
    with pytest.raises(ImportRejected) as rejected:
        import_batch_create(
            dataset=dataset, user=model_admin, file_name="ls.json", data=json.dumps(tasks).encode(), purpose="review"
        )
    [error] = [e.as_dict() for e in rejected.value.result.errors]
    assert (error["line"], error["column"], error["reason"]) == (3, "radius", "Not a number.")


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b'{"tasks": []}', "a list of tasks"),
        (b"[1, 2]", 'Task 1 (line 2) has no "data" object'),
        (b"[{", "Not a Label Studio JSON export"),
    ],
)
def test_a_file_that_is_not_a_task_list_is_rejected_with_a_clear_reason(dataset, model_admin, content, words):
    with pytest.raises(ImportRejected) as rejected:
        import_batch_create(dataset=dataset, user=model_admin, file_name="ls.json", data=content, purpose="review")
    assert words in rejected.value.result.errors[0].reason
    assert not Item.objects.filter(dataset=dataset).exists()
