"""A lineage as a file (issue 10, point 9): every node of one record's lineage page, as CSV or JSONL.

An auditor who traced a decision wants to hand the trace on: the export is the
lineage page's nodes (the start node, then each section up and down, in page
order), one row each, with the node's facts as JSON and `node_sha256`, the sha256
of the node's canonical JSON, so a row can be checked against the lineage JSON
(`?format=json`) of the same record later. Signed records carry their
signatures' record hashes among their facts.

Like the audit trail's exports (governance/audit_exports.py) it is recorded
before it is handed out: one `audit.exported` event naming the start node, the
format and how many nodes it holds; the JSONL ends with the same kind of
summary line (row count and sha256 of every byte before it). A lineage is bounded
by design (each section is a page), so the rows are built in memory and the file
written a chunk at a time.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from governance.audit import audit_record
from governance.audit_chain import canonical_json, to_json_value
from governance.audit_exports import EXPORTED_ACTION
from governance.lineage import lineage_for_user
from governance.lineage_nodes import Node
from models_app.export_formats import ExportFormat, csv_chunks, jsonl_chunks

LINEAGE_EXPORT_FORMATS = (ExportFormat.CSV, ExportFormat.JSONL)
LINEAGE_COLUMNS = [
    "position",
    "direction",
    "section",
    "section_title",
    "kind",
    "id",
    "label",
    "url",
    "page_url",
    "facts",
    "node_sha256",
]


@dataclass(frozen=True)
class LineageExport:
    kind: str
    pk: int
    fmt: ExportFormat
    rows: list[dict[str, Any]]
    event_seq: int

    @property
    def file_name(self) -> str:
        return f"loupe-lineage-{self.kind}-{self.pk}.{self.fmt}"


def node_sha256(node: Node) -> str:
    """sha256 of the node as the lineage JSON gives it (canonical JSON: sorted keys, no spaces, UTF-8)."""
    return hashlib.sha256(canonical_json(to_json_value(node.as_json()))).hexdigest()


def lineage_export_open(*, user: AbstractBaseUser, kind: str, pk: int, fmt: ExportFormat) -> LineageExport:
    """Record the export of `kind` `pk`'s lineage and return its rows.

    Raises what lineage_for_user raises (403 without the role or the dataset, 404 for a
    missing record or kind) before anything is recorded, and ValueError for a format
    other than CSV or JSONL.
    """
    if fmt not in LINEAGE_EXPORT_FORMATS:
        raise ValueError(f"Lineage exports are CSV or JSONL, not {fmt}.")
    lineage = lineage_for_user(user=user, kind=kind, pk=pk)
    rows = [_row(0, "start", "", "", lineage.node)]
    for direction, sections in (("up", lineage.up), ("down", lineage.down)):
        for section in sections:
            for node in section.nodes:
                rows.append(_row(len(rows), direction, section.key, section.title, node))
    with transaction.atomic():
        event = audit_record(
            actor=user,
            action=EXPORTED_ACTION,
            object_type=lineage.node.kind.replace("-", "_"),
            object_id=lineage.node.id,
            dataset_id=lineage.dataset.pk,
            after={"export": "lineage", "format": str(fmt), "start": f"{kind}:{pk}", "nodes": len(rows)},
            reason=f"Exported the lineage of {lineage.node.label} as {str(fmt).upper()}.",
        )
    return LineageExport(kind=kind, pk=pk, fmt=fmt, rows=rows, event_seq=event.seq)


def lineage_export_chunks(export: LineageExport) -> Iterator[bytes]:
    """The file: CSV as is (facts as a JSON cell, formula-like cells neutralised); JSONL with a summary line."""
    if export.fmt == ExportFormat.CSV:
        rows = ({**row, "facts": json.dumps(row["facts"], sort_keys=True, ensure_ascii=False)} for row in export.rows)
        for text in csv_chunks(LINEAGE_COLUMNS, rows):
            yield text.encode("utf-8")
        return
    digest = hashlib.sha256()
    for text in jsonl_chunks(LINEAGE_COLUMNS, export.rows):
        chunk = text.encode("utf-8")
        digest.update(chunk)
        yield chunk
    summary = {
        "export": "lineage",
        "start": f"{export.kind}:{export.pk}",
        "rows": len(export.rows),
        "sha256": digest.hexdigest(),
        "export_event_seq": export.event_seq,
    }
    yield (json.dumps({"summary": summary}, sort_keys=True) + "\n").encode("utf-8")


def _row(position: int, direction: str, section: str, title: str, node: Node) -> dict[str, Any]:
    as_json = to_json_value(node.as_json())
    return {
        "position": position,
        "direction": direction,
        "section": section,
        "section_title": title,
        **{k: as_json[k] for k in ("kind", "id", "label", "url", "page_url", "facts")},
        "node_sha256": node_sha256(node),
    }
