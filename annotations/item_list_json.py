"""The item list API's rows as JSON-ready dicts, without a serializer field per cell.

`ItemListRowSerializer` (annotations/dataset_apis.py) documents the row (the
OpenAPI schema is built from it) and is the reference: a test compares this
module's output with the serializer's, key order included, for rows with and
without every optional value. Building a 100-row page through the serializer's
eighteen fields a row took about a fifth of the list's server time (a field
object per cell, a timezone conversion per date); here a row is one dict
literal.

The conversions are the serializer fields' own: a date-time in the current
time zone as ISO 8601 with "Z" for UTC (DRF's DateTimeField), numbers and
strings as they are, JSON values as stored, None as null.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone

from annotations.item_search import ItemApiRow


def item_list_rows_json(rows: list[ItemApiRow]) -> list[dict[str, Any]]:
    """Each row as ItemListRowSerializer(rows, many=True).data gives it (same keys, order and values)."""
    zone = timezone.get_current_timezone()

    def when(value: dt.datetime | None) -> str | None:
        if value is None:
            return None
        text = value.astimezone(zone).isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text

    def number(value: float | None) -> float | None:
        return None if value is None else float(value)

    return [
        {
            "id": row.id,
            "external_id": row.external_id,
            "values": row.values,
            "source_file": row.source_file,
            "source_row": row.source_row,
            "observed_at": when(row.observed_at),
            "prediction_id": row.prediction_id,
            "predicted_label": row.predicted_label_name,
            "predicted_confidence": number(row.predicted_confidence),
            "predicted_probabilities": row.predicted_probabilities,
            "explanation": row.prediction_explanation,
            "lease_expires_at": when(row.lease_expires_at),
            "purged_at": when(row.purged_at),
            "queue_state": row.queue_state,
            "gold_label": row.gold_label_name,
            "gold_origin": row.gold_origin,
            "answers_count": row.answers_count,
            "last_reviewed_at": when(row.last_reviewed_at),
        }
        for row in rows
    ]
