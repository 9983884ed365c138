"""Export -> re-import round trips (issue 7, "What it must show"): the same items and labels in each format.

A dataset's items leave through the export page as an "import file" (exactly the
columns an import reads: external_id, the features, label, observed_at) in CSV,
JSON Lines or Parquet, and go back in through `import_batch_create` into a fresh
dataset with the same schema. The copy must have the same ids, the same feature
values (floats bit for bit, integers beyond 2**53), the same times, the same gold
labels (and none where there was none) and the same content hashes.
"""

from __future__ import annotations

import io
import json
from datetime import datetime
from typing import Any

import pyarrow.parquet as pq
import pytest
from django.urls import reverse

from annotations.models import Dataset, Feature, GoldLabel, Item, LabelClass
from annotations.services import import_batch_create, item_content_hash
from tests.helpers import login, make_user, review_next
from workflow_site.access import Role

FORMATS = ["csv", "jsonl", "parquet"]
# A category whose values a careless writer or reader would break: a comma, a double quote,
# non-ASCII text (and a character outside the Basic Multilingual Plane).
CATEGORIES = ["a, b", 'say "hi"', "naïve — 東京 🙂", "plain"]
ROWS: list[dict[str, Any]] = [
    {
        "external_id": "r1",
        "size": 0.1,
        "count": 3,
        "kind": "a, b",
        "flag": True,
        "label": "oui, sûr",
        "observed_at": "2024-05-01T08:30:00.123456+02:00",
    },
    {
        "external_id": "r2",
        "size": 1e-7,
        "count": -2,
        "kind": 'say "hi"',
        "flag": False,
        "label": None,
        "observed_at": None,
    },
    {
        "external_id": "élément-3",
        "size": -0.5,
        "count": 0,
        "kind": "naïve — 東京 🙂",
        "flag": True,
        "label": "non",
        "observed_at": "2023-12-31T23:59:59+00:00",
    },
    {
        "external_id": "r4",
        "size": 1 / 3,
        "count": 2**53 + 1,  # not representable as a float: an integer must stay an integer all the way
        "kind": "plain",
        "flag": False,
        "label": None,
        "observed_at": "1999-01-01T00:00:00.000001-11:30",
    },
    {
        "external_id": "r5",
        "size": 1.7976931348623157e308,
        "count": 7,
        "kind": "plain",
        "flag": True,
        "label": "non",
        "observed_at": None,
    },
    {
        "external_id": "r6",
        "size": 5e-324,  # the smallest subnormal double
        "count": 1,
        "kind": "a, b",
        "flag": False,
        "label": "oui, sûr",
        "observed_at": "2024-02-29T12:00:00+05:45",
    },
]


def _samples_dataset(slug: str) -> Dataset:
    """A schema with one feature of each type and a label name with a comma and an accent."""
    dataset = Dataset.objects.create(name=f"Samples {slug}", slug=slug)
    Feature.objects.create(dataset=dataset, position=0, name="size", dtype="float")
    Feature.objects.create(dataset=dataset, position=1, name="count", dtype="integer")
    Feature.objects.create(dataset=dataset, position=2, name="kind", dtype="category", categories=CATEGORIES)
    Feature.objects.create(dataset=dataset, position=3, name="flag", dtype="boolean")
    LabelClass.objects.create(dataset=dataset, position=0, name="oui, sûr")
    LabelClass.objects.create(dataset=dataset, position=1, name="non")
    return dataset


def _copy_of(dataset: Dataset, slug: str) -> Dataset:
    """A fresh dataset with the same features and label classes."""
    copy = Dataset.objects.create(name=f"{dataset.name} again", slug=slug)
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


def _jsonl(rows: list[dict[str, Any]]) -> bytes:
    return ("\n".join(json.dumps(row, ensure_ascii=False) for row in rows) + "\n").encode()


def _export(client, dataset: Dataset, fmt: str) -> bytes:  # type: ignore[no-untyped-def]
    response = client.get(reverse("models_app:export", args=[dataset.pk]), {"kind": "importfile", "format": fmt})
    assert response.status_code == 200, response.content[:500]
    return b"".join(response.streaming_content)


def _snapshot(dataset: Dataset) -> dict[str, dict[str, Any]]:
    """Everything a round trip must keep, per external id: values as stored (with their Python types),
    each float feature's double bit for bit, the time, the gold label and the content hash.

    On PostgreSQL a whole float of 1e16 or more comes back from jsonb as an integer
    (1.7976931348623157e308 as 17976931348623157 and 292 zeros); float() of it is the
    same double, which `float_bits` compares.
    """
    floats = list(dataset.features.filter(dtype="float").values_list("name", flat=True))
    gold = dict(GoldLabel.objects.filter(dataset=dataset).values_list("item__external_id", "label__name"))
    out = {}
    for item in Item.objects.filter(dataset=dataset):
        out[item.external_id] = {
            "values": item.values,
            "types": {name: type(value).__name__ for name, value in item.values.items()},
            "float_bits": {name: float(item.values[name]).hex() for name in floats},
            "observed_at": item.observed_at,
            "label": gold.get(item.external_id),
            "content_hash": item.content_hash,
        }
    return out


@pytest.fixture
def samples(db) -> tuple[Dataset, Any]:  # type: ignore[no-untyped-def]
    """The Samples dataset, imported from a JSON Lines file (so its content hashes are the import's), and its admin."""
    dataset = _samples_dataset("samples")
    admin = make_user("exporter", Role.MODEL_ADMIN, dataset=dataset)
    import_batch_create(dataset=dataset, user=admin, file_name="source.jsonl", data=_jsonl(ROWS), purpose="review")
    return dataset, admin


def test_the_source_dataset_holds_what_the_file_said(samples):
    """The baseline the round trips are compared against is the file itself, not only the database."""
    dataset, _ = samples
    before = _snapshot(dataset)
    assert set(before) == {row["external_id"] for row in ROWS}
    for row in ROWS:
        item = before[row["external_id"]]
        assert item["float_bits"]["size"] == row["size"].hex()
        for name in ("count", "kind", "flag"):
            assert item["values"][name] == row[name] and type(item["values"][name]) is type(row[name])
        expected_time = datetime.fromisoformat(row["observed_at"]) if row["observed_at"] else None
        assert item["observed_at"] == expected_time
        assert item["label"] == row["label"]
    assert before["r4"]["values"]["count"] == 9007199254740993
    assert before["r6"]["values"]["size"] == 5e-324 and before["r1"]["values"]["size"] == 0.1
    assert before["r2"]["values"]["size"] == 1e-7


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_import_file_export_reimports_into_a_fresh_dataset_unchanged(samples, fmt):
    dataset, admin = samples
    before = _snapshot(dataset)

    data = _export(login(admin), dataset, fmt)
    copy = _copy_of(dataset, f"samples-{fmt}")
    batch = import_batch_create(dataset=copy, user=admin, file_name=f"export.{fmt}", data=data, purpose="review")

    assert batch.rows_imported == len(ROWS)
    after = _snapshot(copy)
    assert set(after) == set(before)
    for external_id, original in before.items():
        assert after[external_id] == original, external_id
    assert not GoldLabel.objects.filter(item__dataset=copy, item__external_id__in=["r2", "r4"]).exists()


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_import_file_has_exactly_the_import_columns(samples, fmt):
    dataset, admin = samples
    data = _export(login(admin), dataset, fmt)
    expected = ["external_id", "size", "count", "kind", "flag", "label", "observed_at"]
    if fmt == "csv":
        header = data.decode("utf-8").splitlines()[0].split(",")
    elif fmt == "jsonl":
        header = list(json.loads(data.decode("utf-8").splitlines()[0]))
    else:
        header = pq.read_table(io.BytesIO(data)).column_names
    assert header == expected


def test_the_api_offers_the_import_file_too(samples):
    dataset, admin = samples
    response = login(admin).get(f"/api/datasets/{dataset.pk}/export/", {"kind": "importfile", "file_format": "jsonl"})
    assert response.status_code == 200
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert {json.loads(line)["external_id"] for line in lines} == {row["external_id"] for row in ROWS}


# Values a spreadsheet would run as a formula. CSV exports neutralise them with a leading
# apostrophe (issue 7: a security requirement), which the import takes off again (annotations/import_validation.py).
FORMULA_ROWS = [
    {
        "external_id": "-7",
        "size": 1.0,
        "count": 1,
        "kind": "=SUM(A1)",
        "flag": True,
        "label": "-1",
        "observed_at": None,
    },
    {"external_id": "@x", "size": 2.0, "count": 2, "kind": "plain", "flag": False, "label": None, "observed_at": None},
]


@pytest.mark.parametrize(
    "fmt",
    [
        "csv",
        "jsonl",
        "parquet",
    ],
)
def test_formula_like_ids_categories_and_labels_round_trip(db, fmt):
    dataset = Dataset.objects.create(name="Formulae", slug="formulae")
    Feature.objects.create(dataset=dataset, position=0, name="size", dtype="float")
    Feature.objects.create(dataset=dataset, position=1, name="count", dtype="integer")
    Feature.objects.create(dataset=dataset, position=2, name="kind", dtype="category", categories=["=SUM(A1)", "plain"])
    Feature.objects.create(dataset=dataset, position=3, name="flag", dtype="boolean")
    LabelClass.objects.create(dataset=dataset, position=0, name="-1")
    LabelClass.objects.create(dataset=dataset, position=1, name="+1")
    admin = make_user("exporter", Role.MODEL_ADMIN, dataset=dataset)
    import_batch_create(dataset=dataset, user=admin, file_name="f.jsonl", data=_jsonl(FORMULA_ROWS), purpose="review")
    before = _snapshot(dataset)

    data = _export(login(admin), dataset, fmt)
    copy = _copy_of(dataset, f"formulae-{fmt}")
    import_batch_create(dataset=copy, user=admin, file_name=f"export.{fmt}", data=data, purpose="review")

    assert _snapshot(copy) == before


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_reviewed_dataset_round_trips_its_items_and_current_gold_labels(trained_dataset, reviewer, fmt):
    """The trained Tumours world: labels from the seed file, labels given by review after import,
    unlabelled pool items and holdout items all come back with the labels they have now.

    An item's content hash is the hash of its row as imported (label included), so an item
    labelled by review after its import has, in the copy, the hash its row would have had
    with that label in the file; every other item keeps its hash.
    """
    corrected = review_next(trained_dataset, reviewer, accept=False)
    accepted = review_next(trained_dataset, reviewer, accept=True)
    reviewed = {corrected.item.external_id, accepted.item.external_id}
    admin = make_user("exporter", Role.MODEL_ADMIN, dataset=trained_dataset)
    before = _snapshot(trained_dataset)
    assert before[corrected.item.external_id]["label"] == corrected.label.name

    data = _export(login(admin), trained_dataset, fmt)
    copy = _copy_of(trained_dataset, f"tumours-{fmt}")
    import_batch_create(dataset=copy, user=admin, file_name=f"export.{fmt}", data=data, purpose="review")

    after = _snapshot(copy)
    assert set(after) == set(before)
    for external_id, original in before.items():
        mine = after[external_id]
        for key in ("values", "types", "float_bits", "observed_at", "label"):
            assert mine[key] == original[key], (external_id, key)
        if external_id in reviewed:
            assert mine["content_hash"] != original["content_hash"]
        else:
            assert mine["content_hash"] == original["content_hash"], external_id
        assert mine["content_hash"] == item_content_hash(
            external_id=external_id, values=mine["values"], observed_at=mine["observed_at"], label=mine["label"]
        )
    assert sum(1 for item in after.values() if item["label"] is None) > 0, "unlabelled items came back unlabelled"


def test_a_float_feature_read_back_as_an_integer_is_exported_as_the_same_float():
    """What PostgreSQL's jsonb gives back for 1.7976931348623157e308; a Parquet float column refused it (a 500)."""
    from models_app.exports import _feature_values

    stored = {"size": 17976931348623157 * 10**292, "count": 2**53 + 1, "flag": True}
    features = [("size", "float"), ("count", "int"), ("flag", "bool"), ("kind", "string")]

    exported = _feature_values(stored, features)

    assert exported == {"size": 1.7976931348623157e308, "count": 2**53 + 1, "flag": True, "kind": None}
    assert type(exported["size"]) is float and type(exported["count"]) is int


def test_a_formula_like_id_round_trips_through_csv(samples):
    dataset, admin = samples
    Item.objects.filter(dataset=dataset, external_id="r1").update(external_id="-7")
    before = _snapshot(dataset)

    data = _export(login(admin), dataset, "csv")
    copy = _copy_of(dataset, "samples-formula-id")
    import_batch_create(dataset=copy, user=admin, file_name="export.csv", data=data, purpose="review")

    assert set(_snapshot(copy)) == set(before)
