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

Bounded by design (the target is under 100 ms for an item of a 1M-item dataset;
the sections and their bounds are in governance/lineage_sections.py):
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

import json
from dataclasses import dataclass
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Model

from annotations.models import Dataset, GoldLabel, Review
from annotations.selectors import item_get_for_user
from governance import lineage_nodes as nodes
from governance import lineage_sections as sections
from governance.lineage_nodes import Node
from governance.lineage_sections import PAGE, Section
from governance.selectors import promotion_get_for_user
from models_app.models import ModelVersion, Prediction, SnapshotLabel, TrainingRun
from models_app.selectors import model_version_get_for_user, run_get_for_user, snapshot_get_for_user
from workflow_site.access import MODEL_READ_ROLES, AnyUser, missing_record, require_dataset_access, require_role

LINEAGE_ROLES = MODEL_READ_ROLES


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


def lineage_document(lineage: Lineage) -> dict[str, Any]:
    """The lineage as JSON values, as the page's ?format=json, the API and the exports' node hashes all see it
    (Django's JSON encoding: times to the millisecond), so the three agree byte for byte."""
    return json.loads(json.dumps(lineage.as_json(), cls=DjangoJSONEncoder))


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
    snapshots = sections.snapshots_of(SnapshotLabel.objects.filter(item_id=item.pk))
    return Lineage(
        nodes.item_node(item),
        item.dataset,
        up=[Section("import", "Import batch", [nodes.batch_node(item.batch)])],
        down=[
            sections.predictions_of_item(item.pk),
            sections.reviews(Review.objects.filter(item_id=item.pk), "Reviews"),
            sections.gold_of_item(item.pk),
            snapshots,
            *sections.from_versions(
                sections.versions(ModelVersion.objects.filter(snapshot_id__in=sections.ids(snapshots)))
            ),
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
            sections.reviews(
                Review.objects.filter(item_id=prediction.item_id, shown_prediction_id=prediction.pk),
                "Reviews that were shown it",
            ),
            sections.gold_of_item(prediction.item_id),
        ],
    )


def _review(user: AnyUser, pk: int) -> Lineage:
    review: Review = _get_for_user(user, Review, pk, "review", ("item__dataset", "item__batch", "reviewer", "label"))
    shown = sections.predictions(Prediction.objects.filter(pk=review.shown_prediction_id), "Prediction it was shown")
    snapshots = sections.snapshots_of(SnapshotLabel.objects.filter(review_id=review.pk))
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
            *sections.from_versions(
                sections.versions(ModelVersion.objects.filter(snapshot_id__in=sections.ids(snapshots)))
            ),
        ],
    )


def _gold_label(user: AnyUser, pk: int) -> Lineage:
    related = ("item__dataset", "item__batch", "label", "review__reviewer", "review__label")
    gold: GoldLabel = _get_for_user(user, GoldLabel, pk, "gold label", related)
    snapshots = sections.snapshots_of(SnapshotLabel.objects.filter(item_id=gold.item_id))
    return Lineage(
        nodes.gold_label_node(gold),
        gold.item.dataset,
        up=[
            Section("item", "Item", [nodes.item_node(gold.item)]),
            Section("import", "Import batch", [nodes.batch_node(gold.item.batch)]),
            Section("review", "Derived from", [nodes.review_node(gold.review)] if gold.review else []),
        ],
        down=[
            snapshots,
            *sections.from_versions(
                sections.versions(ModelVersion.objects.filter(snapshot_id__in=sections.ids(snapshots)))
            ),
        ],
    )


def _snapshot(user: AnyUser, pk: int) -> Lineage:
    snapshot = snapshot_get_for_user(user=user, pk=pk, roles=LINEAGE_ROLES)
    runs = list(TrainingRun.objects.filter(snapshot=snapshot).order_by("pk")[: PAGE + 1])
    return Lineage(
        nodes.snapshot_node(snapshot),
        snapshot.dataset,
        up=[sections.snapshot_items(snapshot.pk, snapshot.label_count), sections.triggers(snapshot.pk)],
        down=[
            Section("training_runs", "Training runs", [nodes.run_node(r) for r in runs[:PAGE]], more=len(runs) > PAGE),
            *sections.from_versions(sections.versions(ModelVersion.objects.filter(snapshot=snapshot))),
        ],
    )


def _training_run(user: AnyUser, pk: int) -> Lineage:
    run = run_get_for_user(user=user, pk=pk, roles=LINEAGE_ROLES)
    up = [sections.triggers_of_run(run.pk)]
    if run.snapshot is not None:
        up = [Section("snapshot", "Snapshot", [nodes.snapshot_node(run.snapshot)])] + up
        up.append(sections.snapshot_items(run.snapshot.pk, run.snapshot.label_count))
    return Lineage(
        nodes.run_node(run),
        run.dataset,
        up=up,
        down=sections.from_versions(sections.versions(ModelVersion.objects.filter(training_run=run))),
    )


def _model_version(user: AnyUser, pk: int) -> Lineage:
    version = model_version_get_for_user(user=user, pk=pk, roles=LINEAGE_ROLES)
    return Lineage(
        nodes.version_node(version),
        version.dataset,
        up=[
            Section("training_run", "Training run", [nodes.run_node(version.training_run)]),
            Section("snapshot", "Snapshot", [nodes.snapshot_node(version.snapshot)]),
            sections.snapshot_items(version.snapshot_id, version.snapshot.label_count),
        ],
        down=sections.from_versions([version], listed=False),
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
    down = sections.from_versions([version], listed=False)
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


__all__ = ["LINEAGE_ROLES", "Lineage", "Section", "lineage_for_user"]
