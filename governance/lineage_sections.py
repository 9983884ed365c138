"""The sections of a lineage (governance/lineage.py): each one query, with a LIMIT on an index.

A section is a titled list of nodes of one kind, with a flag when there are more
than shown. PAGE bounds every list; the items a version predicted (every open
item of the dataset, a million of them) are a count capped at COUNT_CAP and a
first page of ITEMS_PAGE per version, for at most VERSIONS_WITH_ITEMS versions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import F

from annotations.models import GoldLabel, LabelClass
from governance import lineage_nodes as nodes
from governance.lineage_nodes import Node
from governance.models import PromotionRequest
from governance.promotions import RECORD_EVALUATION_FIELDS, record_hash_of
from models_app.models import Evaluation, ModelVersion, Prediction, SnapshotLabel, TrainingTrigger

PAGE = 20  # nodes shown per section
VERSIONS_WITH_ITEMS = 5  # versions whose predicted items are listed (the newest)
ITEMS_PAGE = 10  # predicted items listed per version
COUNT_CAP = 10_000  # predicted items counted per version, at most ("10,000 or more")


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    nodes: list[Node]
    more: bool = False  # there are more than the nodes shown
    total: int | None = None  # how many there are, when known without counting a large table
    note: str = ""
    counts: dict[str, Any] | None = None  # per model version: items predicted, counted up to COUNT_CAP

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "nodes": [n.as_json() for n in self.nodes],
            "more": self.more,
            "total": self.total,
            "note": self.note,
            **({"counts": self.counts} if self.counts is not None else {}),
        }

    @property
    def columns(self) -> list[str]:
        """The facts shown as table columns: those of the first node (a section holds one kind)."""
        return list(self.nodes[0].facts) if self.nodes else []


def ids(section: Section) -> list[int]:
    return [n.id for n in section.nodes]


def _page(rows: list[Any]) -> tuple[list[Any], bool]:
    return rows[:PAGE], len(rows) > PAGE


def predictions(predictions: Any, title: str) -> Section:
    rows, more = _page(list(predictions.select_related("model_version", "label").order_by("-pk")[: PAGE + 1]))
    return Section("predictions", title, [nodes.prediction_node(p) for p in rows], more=more)


def predictions_of_item(item_id: int) -> Section:
    # Index prediction_unique (item, model_version): one entry per version that predicted the item.
    return predictions(Prediction.objects.filter(item_id=item_id), "Predictions")


def reviews(reviews: Any, title: str) -> Section:
    # Index review_item_reviewer (item, reviewer): an item's reviews.
    rows, more = _page(list(reviews.select_related("reviewer", "label").order_by("-created_at", "-pk")[: PAGE + 1]))
    return Section("reviews", title, [nodes.review_node(r) for r in rows], more=more)


def gold_of_item(item_id: int) -> Section:
    gold = GoldLabel.objects.filter(item_id=item_id).select_related("label").first()
    return Section("gold_label", "Gold label", [nodes.gold_label_node(gold)] if gold else [])


def snapshots_of(labels: Any) -> Section:
    """The snapshots holding these SnapshotLabel rows, newest first (index snapshot_label_item, or the FK's)."""
    rows, more = _page(list(labels.select_related("snapshot").order_by("-snapshot_id")[: PAGE + 1]))
    return Section("snapshots", "Snapshots containing it", [nodes.snapshot_node(r.snapshot) for r in rows], more=more)


def snapshot_items(snapshot_id: int, label_count: int) -> Section:
    # Index snapshot_item_unique (snapshot, item): the first labels in item order; the total is stored.
    rows = list(
        SnapshotLabel.objects.filter(snapshot_id=snapshot_id).select_related("label").order_by("item_id")[:PAGE]
    )
    return Section(
        "snapshot_items",
        "Labelled items it froze",
        [nodes.snapshot_label_node(r) for r in rows],
        more=label_count > len(rows),
        total=label_count,
    )


def triggers(snapshot_id: int) -> Section:
    rows, more = _page(list(TrainingTrigger.objects.filter(snapshot_id=snapshot_id).order_by("pk")[: PAGE + 1]))
    return _trigger_section(rows, more)


def triggers_of_run(run_id: int) -> Section:
    rows, more = _page(list(TrainingTrigger.objects.filter(run_id=run_id).order_by("pk")[: PAGE + 1]))
    return _trigger_section(rows, more)


def _trigger_section(rows: list[TrainingTrigger], more: bool) -> Section:
    found = [
        Node(
            "trigger",
            t.pk,
            f"{t.get_kind_display()}{': ' + t.reason if t.reason else ''}",
            nodes.lineage_url(nodes.TRAINING_RUN, t.run_id),
            {"kind": t.kind, "reason": t.reason, "training_run": t.run_id, "created_at": t.created_at},
        )
        for t in rows
    ]
    return Section("triggers", "Why it was trained", found, more=more)


def versions(versions: Any) -> list[ModelVersion]:
    """Up to PAGE + 1 versions, newest first, with what their nodes and signatures need."""
    return list(versions.select_related("training_run", "snapshot").order_by("-version")[: PAGE + 1])


def from_versions(versions: list[ModelVersion], *, listed: bool = True) -> list[Section]:
    """Down from model versions: the versions themselves (unless `listed` is False: the start node),
    their evaluations, promotion decisions with signatures, and the items they predicted.
    Precondition: training_run and snapshot joined. At most PAGE versions are followed."""
    shown, more = _page(versions)
    sections = []
    if listed:
        sections.append(
            Section("model_versions", "Model versions trained on them", [nodes.version_node(v) for v in shown], more)
        )
    numbers = {v.pk: v.version for v in shown}
    # The champion a run was compared with is not among `shown`: its number comes with the row (a join),
    # so its evaluation reads "v1 as champion", not "version <pk>".
    evaluations = list(
        Evaluation.objects.filter(training_run_id__in=[v.training_run_id for v in shown])
        .annotate(version_number=F("model_version__version"))
        .order_by("training_run_id", "role")
    )
    sections.append(
        Section(
            "evaluations",
            "Evaluations",
            [nodes.evaluation_node(e, version_number=e.version_number) for e in evaluations],
        )
    )
    hash_now = {v.pk: _record_hash_now(v, evaluations) for v in shown}
    requests, more_requests = _page(
        list(
            PromotionRequest.objects.filter(model_version_id__in=numbers)
            .select_related("requested_by", "decided_by", "signature")
            .order_by("-requested_at", "-pk")[: PAGE + 1]
        )
    )
    sections.append(
        Section(
            "promotions",
            "Promotion decisions and signatures",
            [
                nodes.promotion_node(
                    r, version_number=numbers[r.model_version_id], record_hash_now=hash_now[r.model_version_id]
                )
                for r in requests
            ],
            more=more_requests,
        )
    )
    sections.append(_predicted_items(shown[:VERSIONS_WITH_ITEMS]))
    return sections


def _record_hash_now(version: ModelVersion, evaluations: list[Evaluation]) -> str:
    """The version's record hash today, from evaluations already read (governance.promotions.record_hash_of)."""
    own = sorted((e for e in evaluations if e.training_run_id == version.training_run_id), key=lambda e: e.role)
    return record_hash_of(version, evaluations=[{f: getattr(e, f) for f in RECORD_EVALUATION_FIELDS} for e in own])


def _predicted_items(versions: list[ModelVersion]) -> Section:
    """For each version, how many items it predicted (counted up to COUNT_CAP) and the first ITEMS_PAGE
    of them in item order: two statements whatever the number of versions, each a UNION ALL of one
    bounded index range per version (index prediction_version_item)."""
    title = "Items these versions predicted"
    if not versions:
        return Section("predicted_items", title, [])
    table = connection.ops.quote_name(Prediction._meta.db_table)
    labels = connection.ops.quote_name(LabelClass._meta.db_table)
    page_sql = " UNION ALL ".join(
        f"SELECT * FROM (SELECT p.model_version_id, p.item_id, l.name, p.confidence FROM {table} p "
        f"JOIN {labels} l ON l.id = p.label_id WHERE p.model_version_id = %s ORDER BY p.item_id LIMIT %s) AS v{i}"
        for i in range(len(versions))
    )
    count_sql = " UNION ALL ".join(
        f"SELECT %s, (SELECT COUNT(*) FROM (SELECT 1 FROM {table} WHERE model_version_id = %s LIMIT %s) AS c{i})"
        for i in range(len(versions))
    )
    with connection.cursor() as cursor:
        cursor.execute(page_sql, [x for v in versions for x in (v.pk, ITEMS_PAGE)])
        rows = cursor.fetchall()
        cursor.execute(count_sql, [x for v in versions for x in (v.pk, v.pk, COUNT_CAP + 1)])
        counts = dict(cursor.fetchall())
    numbers = {v.pk: v.version for v in versions}
    found = [
        nodes.predicted_item_node(item_id=item_id, version_number=numbers[vid], label=name, confidence=conf)
        for vid, item_id, name, conf in rows
    ]
    words = [
        f"v{v.version}: {'more than ' + format(COUNT_CAP, ',') if counts[v.pk] > COUNT_CAP else counts[v.pk]} items"
        for v in versions
    ]
    return Section(
        "predicted_items",
        title,
        found,
        more=any(counts[v.pk] > ITEMS_PAGE for v in versions),
        note="; ".join(words) + f" (the first {ITEMS_PAGE} of each shown).",
        counts={
            f"v{v.version}": {
                "model_version_id": v.pk,
                "items": min(counts[v.pk], COUNT_CAP),
                "capped": counts[v.pk] > COUNT_CAP,
            }
            for v in versions
        },
    )
