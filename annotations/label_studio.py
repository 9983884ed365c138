"""Label Studio's JSON task format, both ways (issue 7, point 4), so a team can move its work
from Label Studio to Loupe and back.

A task is ``{"id", "data": {...}, "predictions": [...], "annotations": [...], "meta": {...}}``;
a choice is ``{"from_name": "label", "to_name": "item", "type": "choices",
"value": {"choices": [name]}}`` (the label config in `LABEL_CONFIG`).

- **Out** (`item_task`): the item's data (external id, feature values, when observed)
  in ``data``; the champion's prediction shown to reviewers in ``predictions`` (with
  its confidence as ``score``); each review as an annotation (a skip is a cancelled
  one); and what only Loupe knows in ``meta.loupe`` (provenance, the gold label and
  where it came from, who reviewed).
- **In** (`tasks_to_csv`): a Label Studio export becomes the same CSV an analyst
  would upload, so it goes through the same checks and the same row-level report.
  The id is ``data.external_id``, or ``ls-<task id>`` for a task from Label Studio;
  the label is ``meta.loupe.gold_label`` when Loupe wrote the file, else the choice
  of the task's last annotation that was not cancelled. Line N of the report is
  task N−1 (line 1 stands for the header, as in a CSV).

No Django here beyond the models passed in, so the converter is testable on bytes.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from typing import Any

LABEL_CONFIG = (
    '<View><Header value="$external_id"/><Choices name="label" toName="item" choice="single">'
    "<!-- one <Choice value=...> per label class --></Choices></View>"
)
ID_KEY = "external_id"


class LabelStudioFormatError(ValueError):
    """The file is not a list of Label Studio tasks; the message says where it went wrong."""


def _choice(label: str) -> list[dict[str, Any]]:
    return [{"from_name": "label", "to_name": "item", "type": "choices", "value": {"choices": [label]}}]


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def item_task(item: Any, feature_names: list[str], reviews: list[Any]) -> dict[str, Any]:
    """One item as a Label Studio task. `reviews` are the item's, oldest first, with label and reviewer loaded."""
    gold = getattr(item, "gold_label", None)
    task: dict[str, Any] = {
        "id": item.pk,
        "data": {
            ID_KEY: item.external_id,
            **{name: item.values.get(name) for name in feature_names},
            "observed_at": _iso(item.observed_at),
        },
        "predictions": [],
        "annotations": [
            {
                "result": _choice(review.label.name) if review.label_id else [],
                "was_cancelled": review.label_id is None,
                "created_at": _iso(review.created_at),
                "lead_time": None,
            }
            for review in reviews
        ],
        "meta": {
            "loupe": {
                "source_file": item.source_file,
                "source_row": item.source_row,
                "content_sha256": item.content_hash,
                "queue_state": item.queue_state,
                "gold_label": gold.label.name if gold else None,
                "gold_origin": gold.origin if gold else None,
                "reviews": [
                    {
                        "reviewer": review.reviewer.get_username(),
                        "created_at": _iso(review.created_at),
                        "decision": review.decision,
                        "label": review.label.name if review.label_id else None,
                        "reason": review.reason,
                    }
                    for review in reviews
                ],
            }
        },
    }
    if item.predicted_label_id:
        task["predictions"].append(
            {
                "model_version": f"v{item.predicted_by_version}",
                "score": item.predicted_confidence,
                "result": _choice(item.predicted_label.name),
            }
        )
    return task


def json_array_chunks(tasks: Any, every: int = 200) -> Any:
    """A JSON array written a few tasks at a time (the export streams; a million tasks never sit in memory)."""
    yield "["
    buffer: list[str] = []
    first = True
    for task in tasks:
        buffer.append(("" if first else ",") + "\n" + json.dumps(task, ensure_ascii=False))
        first = False
        if len(buffer) >= every:
            yield "".join(buffer)
            buffer = []
    yield "".join(buffer) + "\n]\n"


def _task_label(task: dict[str, Any]) -> str | None:
    loupe = (task.get("meta") or {}).get("loupe") if isinstance(task.get("meta"), dict) else None
    if isinstance(loupe, dict) and "gold_label" in loupe:
        return loupe["gold_label"]
    for annotation in reversed(task.get("annotations") or []):
        if not isinstance(annotation, dict) or annotation.get("was_cancelled"):
            continue
        for result in annotation.get("result") or []:
            choices = (result.get("value") or {}).get("choices") if isinstance(result, dict) else None
            if choices:
                return str(choices[0])
    return None


def tasks_to_csv(data: bytes, feature_names: list[str]) -> bytes:
    """A Label Studio JSON export as the CSV Loupe imports (header: external_id, features, label, observed_at).

    Raises LabelStudioFormatError, naming the task, when the file is not a list of
    tasks each with a ``data`` object. Values are written as text; the CSV checks
    that follow name any bad value by line (task N is line N+1) and column.
    """
    try:
        tasks = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LabelStudioFormatError(f"Not a Label Studio JSON export: {exc}.") from None
    if not isinstance(tasks, list):
        raise LabelStudioFormatError("A Label Studio JSON export is a list of tasks; this file holds something else.")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([ID_KEY, *feature_names, "label", "observed_at"])
    for number, task in enumerate(tasks, start=1):
        if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
            raise LabelStudioFormatError(f'Task {number} (line {number + 1}) has no "data" object.')
        values = task["data"]
        external_id = values.get(ID_KEY)
        if external_id in (None, ""):
            external_id = f"ls-{task.get('id', number)}"
        cells = [
            external_id,
            *(values.get(name) for name in feature_names),
            _task_label(task),
            values.get("observed_at"),
        ]
        writer.writerow(["" if cell is None else _text(cell) for cell in cells])
    return out.getvalue().encode("utf-8")


def _text(value: Any) -> str:
    """A JSON value as the CSV text the checks read: booleans as true/false, numbers as written."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return repr(value)
    return str(value)
