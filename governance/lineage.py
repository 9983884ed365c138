"""Lineage both ways (issue 10, point 7): from any record, up to where it came from and down to what it shaped.

The chain, top to bottom:

    item → import batch (file sha256) → predictions (which model versions)
         → reviews (who, guideline version, mode, why the item was in their queue)
         → gold label → snapshots containing it → model versions trained on them
         → evaluations → promotion decisions and their signatures
         → items those versions predicted

A walk may start at any of item, prediction, review, gold label, snapshot,
training run, model version or promotion request; `up` lists what the record
came from, `down` what it went into. Every node carries its id, kind, a label,
key facts and its URL, so the page can be clicked through and a program can
follow `url` in the JSON.

Bounded by design (the target is under 100 ms for an item of a 1M-item dataset):
every section is one query with a LIMIT on an index (a page of PAGE nodes and a
flag that there are more), so the number of queries depends on the kind of the
start node, never on the data. The one fan-out without a natural bound, the
items a version predicted (every open item of the dataset), is a count capped at
COUNT_CAP and a first page of ITEMS_PAGE items per version, for at most
VERSIONS_WITH_ITEMS versions, in one UNION ALL statement each (index
prediction_version_item, models_app migration 0007).

Who may see it: those who may read model versions and promotions of the
dataset (MODEL_READ_ROLES: model admins of the dataset, auditors everywhere),
checked before the record is returned; a forbidden record is a 403, a missing
one a 404 for auditors (workflow_site.access.missing_record). No feature value
of any item is shown, so a lineage page is not a read of item data: the item
node links to the item history, which logs the read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import Model

from annotations.models import Dataset, GoldLabel, LabelClass, Review
from annotations.selectors import item_get_for_user
from governance import lineage_nodes as nodes
from governance.lineage_nodes import Node
from governance.models import PromotionRequest
from governance.promotions import RECORD_EVALUATION_FIELDS, record_hash_of
from governance.selectors import promotion_get_for_user
from models_app.models import Evaluation, ModelVersion, Prediction, SnapshotLabel, TrainingRun, TrainingTrigger
from models_app.selectors import model_version_get_for_user, run_get_for_user, snapshot_get_for_user
from workflow_site.access import MODEL_READ_ROLES, AnyUser, missing_record, require_dataset_access, require_role

LINEAGE_ROLES = MODEL_READ_ROLES
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


@dataclass(frozen=True)
class Lineage:
    node: Node
    dataset: Dataset
    up: list[Section]
    down: list[Section]

    def as_json(self) -> dict[str, Any]:
        return {
            "node": self.node.as_json(),
            "dataset": {"id": self.dataset.pk, "name": self.dataset.name},
            "up": [s.as_json() for s in self.up],
            "down": [s.as_json() for s in self.down],
        }


def lineage_for_user(*, user: AnyUser, kind: str, pk: int) -> Lineage:
    """The lineage of record `pk` of `kind` (one of lineage_nodes.KINDS), if `user` may read its dataset.

    Raises PermissionDenied (403) without the role or the dataset, Http404 for a
    missing record (auditors; see missing_record) or an unknown kind.
    """
    from django.http import Http404

    walk = _WALKS.get(kind)
    if walk is None:
        raise Http404(f"No lineage for “{kind}”: one of {', '.join(nodes.KINDS)}.")
    require_role(user, *LINEAGE_ROLES)
    return walk(user, pk)


def _get_for_user(user: AnyUser, model: type[Model], pk: int, what: str, related: tuple[str, ...]) -> Any:
    """A record of `model` whose item is in a dataset `user` may read (role already checked)."""
    try:
        record = model.objects.select_related(*related).get(pk=pk)  # type: ignore[attr-defined]
    except model.DoesNotExist as exc:  # type: ignore[attr-defined]
        raise missing_record(user, LINEAGE_ROLES, what) from exc
    require_dataset_access(user, record.item.dataset, LINEAGE_ROLES)
    return record


# --- the walks, one per kind of start node ---------------------------------------------------------


def _item(user: AnyUser, pk: int) -> Lineage:
    item = item_get_for_user(user=user, pk=pk, roles=LINEAGE_ROLES, related=("batch",))
    snapshots = _snapshots_of(SnapshotLabel.objects.filter(item_id=item.pk))
    return Lineage(
        nodes.item_node(item),
        item.dataset,
        up=[Section("import", "Import batch", [nodes.batch_node(item.batch)])],
        down=[
            _predictions_of_item(item.pk),
            _reviews(Review.objects.filter(item_id=item.pk), "Reviews"),
            _gold_of_item(item.pk),
            snapshots,
            *_from_versions(_versions(ModelVersion.objects.filter(snapshot_id__in=_ids(snapshots)))),
        ],
    )


def _prediction(user: AnyUser, pk: int) -> Lineage:
    related = ("item__dataset", "item__batch", "label", "model_version__training_run", "model_version__snapshot")
    prediction: Prediction = _get_for_user(user, Prediction, pk, "prediction", related)
    version = prediction.model_version
    return Lineage(
        nodes.prediction_node(prediction),
        prediction.item.dataset,
        up=[
            Section("item", "Item", [nodes.item_node(prediction.item)]),
            Section("import", "Import batch", [nodes.batch_node(prediction.item.batch)]),
            Section("model_version", "Made by", [nodes.version_node(version)]),
            Section("training_run", "Trained by", [nodes.run_node(version.training_run)]),
            Section("snapshot", "Trained on", [nodes.snapshot_node(version.snapshot)]),
        ],
        down=[
            _reviews(
                Review.objects.filter(item_id=prediction.item_id, shown_prediction_id=prediction.pk),
                "Reviews that were shown it",
            ),
            _gold_of_item(prediction.item_id),
        ],
    )


def _review(user: AnyUser, pk: int) -> Lineage:
    review: Review = _get_for_user(user, Review, pk, "review", ("item__dataset", "item__batch", "reviewer", "label"))
    shown = _predictions(Prediction.objects.filter(pk=review.shown_prediction_id), "Prediction it was shown")
    snapshots = _snapshots_of(SnapshotLabel.objects.filter(review_id=review.pk))
    gold = GoldLabel.objects.filter(item_id=review.item_id, review_id=review.pk).select_related("label").first()
    return Lineage(
        nodes.review_node(review),
        review.item.dataset,
        up=[
            Section("item", "Item", [nodes.item_node(review.item)]),
            Section("import", "Import batch", [nodes.batch_node(review.item.batch)]),
            shown,
        ],
        down=[
            Section(
                "gold_label",
                "Gold label derived from it",
                [nodes.gold_label_node(gold)] if gold else [],
                note="" if gold else "The item's current gold label does not come from this review.",
            ),
            snapshots,
            *_from_versions(_versions(ModelVersion.objects.filter(snapshot_id__in=_ids(snapshots)))),
        ],
    )


def _gold_label(user: AnyUser, pk: int) -> Lineage:
    related = ("item__dataset", "item__batch", "label", "review__reviewer", "review__label")
    gold: GoldLabel = _get_for_user(user, GoldLabel, pk, "gold label", related)
    snapshots = _snapshots_of(SnapshotLabel.objects.filter(item_id=gold.item_id))
    return Lineage(
        nodes.gold_label_node(gold),
        gold.item.dataset,
        up=[
            Section("item", "Item", [nodes.item_node(gold.item)]),
            Section("import", "Import batch", [nodes.batch_node(gold.item.batch)]),
            Section("review", "Derived from", [nodes.review_node(gold.review)] if gold.review else []),
        ],
        down=[snapshots, *_from_versions(_versions(ModelVersion.objects.filter(snapshot_id__in=_ids(snapshots))))],
    )


def _snapshot(user: AnyUser, pk: int) -> Lineage:
    snapshot = snapshot_get_for_user(user=user, pk=pk, roles=LINEAGE_ROLES)
    runs = list(TrainingRun.objects.filter(snapshot=snapshot).order_by("pk")[: PAGE + 1])
    return Lineage(
        nodes.snapshot_node(snapshot),
        snapshot.dataset,
        up=[_snapshot_items(snapshot.pk, snapshot.label_count), _triggers(snapshot.pk)],
        down=[
            Section("training_runs", "Training runs", [nodes.run_node(r) for r in runs[:PAGE]], more=len(runs) > PAGE),
            *_from_versions(_versions(ModelVersion.objects.filter(snapshot=snapshot))),
        ],
    )


def _training_run(user: AnyUser, pk: int) -> Lineage:
    run = run_get_for_user(user=user, pk=pk, roles=LINEAGE_ROLES)
    up = [_triggers_of_run(run.pk)]
    if run.snapshot is not None:
        up = [Section("snapshot", "Snapshot", [nodes.snapshot_node(run.snapshot)])] + up
        up.append(_snapshot_items(run.snapshot.pk, run.snapshot.label_count))
    return Lineage(
        nodes.run_node(run),
        run.dataset,
        up=up,
        down=_from_versions(_versions(ModelVersion.objects.filter(training_run=run))),
    )


def _model_version(user: AnyUser, pk: int) -> Lineage:
    version = model_version_get_for_user(user=user, pk=pk, roles=LINEAGE_ROLES)
    return Lineage(
        nodes.version_node(version),
        version.dataset,
        up=[
            Section("training_run", "Training run", [nodes.run_node(version.training_run)]),
            Section("snapshot", "Snapshot", [nodes.snapshot_node(version.snapshot)]),
            _snapshot_items(version.snapshot_id, version.snapshot.label_count),
        ],
        down=_from_versions([version], listed=False),
    )


def _promotion(user: AnyUser, pk: int) -> Lineage:
    request = promotion_get_for_user(user=user, pk=pk, roles=LINEAGE_ROLES)
    wanted = [request.model_version_id, request.previous_champion_id]
    versions = {
        v.pk: v
        for v in ModelVersion.objects.select_related("training_run", "snapshot").filter(pk__in=[v for v in wanted if v])
    }
    version = versions[request.model_version_id]
    previous = versions.get(request.previous_champion_id) if request.previous_champion_id else None
    down = _from_versions([version], listed=False)
    # The start node is the decision as the promotions section shows it (with the signature checked against
    # the record now); built without that check only if it fell off the section's page.
    this = next((n for s in down if s.key == "promotions" for n in s.nodes if n.id == request.pk), None)
    this = this or nodes.promotion_node(request, version_number=version.version, record_hash_now=None)
    return Lineage(
        this,
        request.model_version.dataset,
        up=[
            Section("model_version", "Model version", [nodes.version_node(version)]),
            Section("training_run", "Training run", [nodes.run_node(version.training_run)]),
            Section("snapshot", "Snapshot", [nodes.snapshot_node(version.snapshot)]),
            Section("previous_champion", "Champion it replaced", [nodes.version_node(previous)] if previous else []),
        ],
        down=down,
    )


_WALKS = {
    nodes.ITEM: _item,
    nodes.PREDICTION: _prediction,
    nodes.REVIEW: _review,
    nodes.GOLD_LABEL: _gold_label,
    nodes.SNAPSHOT: _snapshot,
    nodes.TRAINING_RUN: _training_run,
    nodes.MODEL_VERSION: _model_version,
    nodes.PROMOTION: _promotion,
}


# --- sections: one query each ----------------------------------------------------------------------


def _ids(section: Section) -> list[int]:
    return [n.id for n in section.nodes]


def _page(rows: list[Any]) -> tuple[list[Any], bool]:
    return rows[:PAGE], len(rows) > PAGE


def _predictions(predictions: Any, title: str) -> Section:
    rows, more = _page(list(predictions.select_related("model_version", "label").order_by("-pk")[: PAGE + 1]))
    return Section("predictions", title, [nodes.prediction_node(p) for p in rows], more=more)


def _predictions_of_item(item_id: int) -> Section:
    # Index prediction_unique (item, model_version): one entry per version that predicted the item.
    return _predictions(Prediction.objects.filter(item_id=item_id), "Predictions")


def _reviews(reviews: Any, title: str) -> Section:
    # Index review_item_reviewer (item, reviewer): an item's reviews.
    rows, more = _page(list(reviews.select_related("reviewer", "label").order_by("-created_at", "-pk")[: PAGE + 1]))
    return Section("reviews", title, [nodes.review_node(r) for r in rows], more=more)


def _gold_of_item(item_id: int) -> Section:
    gold = GoldLabel.objects.filter(item_id=item_id).select_related("label").first()
    return Section("gold_label", "Gold label", [nodes.gold_label_node(gold)] if gold else [])


def _snapshots_of(labels: Any) -> Section:
    """The snapshots holding these SnapshotLabel rows, newest first (index snapshot_label_item, or the FK's)."""
    rows, more = _page(list(labels.select_related("snapshot").order_by("-snapshot_id")[: PAGE + 1]))
    return Section("snapshots", "Snapshots containing it", [nodes.snapshot_node(r.snapshot) for r in rows], more=more)


def _snapshot_items(snapshot_id: int, label_count: int) -> Section:
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


def _triggers(snapshot_id: int) -> Section:
    rows, more = _page(list(TrainingTrigger.objects.filter(snapshot_id=snapshot_id).order_by("pk")[: PAGE + 1]))
    return _trigger_section(rows, more)


def _triggers_of_run(run_id: int) -> Section:
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


def _versions(versions: Any) -> list[ModelVersion]:
    """Up to PAGE + 1 versions, newest first, with what their nodes and signatures need."""
    return list(versions.select_related("training_run", "snapshot").order_by("-version")[: PAGE + 1])


def _from_versions(versions: list[ModelVersion], *, listed: bool = True) -> list[Section]:
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
    evaluations = list(
        Evaluation.objects.filter(training_run_id__in=[v.training_run_id for v in shown]).order_by(
            "training_run_id", "role"
        )
    )
    sections.append(
        Section(
            "evaluations",
            "Evaluations",
            [nodes.evaluation_node(e, version_number=numbers.get(e.model_version_id)) for e in evaluations],
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


__all__ = ["LINEAGE_ROLES", "Lineage", "Section", "lineage_for_user"]
