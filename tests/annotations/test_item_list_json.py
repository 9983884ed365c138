"""The item list API's rows are built without the serializer (annotations/item_list_json.py): the same JSON."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.utils import timezone

from annotations.dataset_apis import ItemListRowSerializer
from annotations.item_list_json import item_list_rows_json
from annotations.item_search import ItemApiRow

WHEN = dt.datetime(2026, 3, 29, 0, 30, 5, 123456, tzinfo=dt.UTC)  # a daylight-saving change in Europe

FULL = ItemApiRow(
    id=7,
    dataset_id=1,
    external_id="case-7 ü",
    values={"radius": 12.5, "lobes": 3, "note": "<b>", "nested": {"a": [1, None]}},
    source_file="batch.csv",
    source_row=9,
    observed_at=WHEN,
    prediction_id=70,
    predicted_label_id=2,
    predicted_confidence=0.8125,
    predicted_probabilities={"benign": 0.1875, "malignant": 0.8125},
    prediction_explanation={"method": "linear", "contributors": [["radius", 12.5, 0.4, "toward"]]},
    lease_expires_at=WHEN + dt.timedelta(minutes=10),
    purged_at=WHEN + dt.timedelta(days=400, microseconds=-WHEN.microsecond),
    queue_state="done",
    gold_label_id=2,
    gold_origin="consensus",
    answers_count=2,
    last_reviewed_at=WHEN + dt.timedelta(hours=5),
    predicted_label_name="malignant",
    gold_label_name="malignant",
)
BARE = ItemApiRow(
    id=8,
    dataset_id=1,
    external_id="",
    values={},
    source_file="",
    source_row=0,
    observed_at=None,
    prediction_id=None,
    predicted_label_id=None,
    predicted_confidence=None,
    predicted_probabilities=None,
    prediction_explanation=None,
    lease_expires_at=None,
    purged_at=None,
    queue_state="open",
    gold_label_id=None,
    gold_origin=None,
    answers_count=0,
    last_reviewed_at=None,
    predicted_label_name=None,
    gold_label_name=None,
)


@pytest.mark.parametrize("zone", ["UTC", "Europe/Paris", "America/St_Johns"])
def test_the_rows_are_the_serializers_to_the_byte_in_any_time_zone(zone):
    rows = [FULL, BARE, ItemApiRow(**{**{f: getattr(FULL, f) for f in FULL.__slots__}, "predicted_confidence": 1})]

    with timezone.override(zone):
        expected = json.dumps(ItemListRowSerializer(rows, many=True).data)
        built = json.dumps(item_list_rows_json(rows))

    assert built == expected
