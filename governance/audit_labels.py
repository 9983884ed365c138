"""Name each audit event's object as people know it, for a whole page at once (issue 6, defect 14).

An event records its object as a type and a primary key (`item 48213`), which
no reviewer has ever seen: they know the item by its external id in a dataset,
a model by "v3", a promotion by its request number, a person by their username.
`audit_rows` names the objects of a page of events with one query, whatever the
page holds: a UNION ALL of one small branch per kind of object on the page, each
branch a primary-key lookup that also brings its dataset's name.

A record deleted since its event (a feature removed in the site admin) is named
from the event's own before/after state where that holds a name, else as
"<type> <id>", so a page never fails on history.

Callers pass events they were allowed to read (governance.selectors checks the
role); nothing here checks permissions.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import BigIntegerField, CharField, F, QuerySet, Value
from django.db.models.functions import Cast
from django.urls import reverse

from annotations.models import Dataset, DatasetMembership, Feature, ImportBatch, Item, LabelClass
from governance.models import AuditEvent, PromotionRequest, Signature
from governance.signing import SignatureCheck, signature_checks_for
from models_app.models import DatasetSnapshot, ModelVersion, RetrainingPolicy, TrainingRun


@dataclass(frozen=True)
class ObjectLabel:
    """ "item abc-17 in Tumours": `noun` says what kind, `name` is what people call it."""

    noun: str
    name: str = ""
    dataset: str = ""
    url: str | None = None

    @property
    def text(self) -> str:
        words = " ".join(part for part in (self.noun, self.name) if part)
        return f"{words} in {self.dataset}" if self.dataset else words


@dataclass(frozen=True)
class AuditRow:
    event: AuditEvent
    object: ObjectLabel
    # The signature an event records (its after's "signature", by id), checked against its record now.
    signature_check: SignatureCheck | None = None


def audit_rows(events: Iterable[AuditEvent]) -> list[AuditRow]:
    """The page's events, in order, each with its object named and any signature it records checked."""
    events = list(events)
    labels = audit_object_labels(events)
    checks = _signature_checks(events)
    return [
        AuditRow(event=e, object=labels[(e.object_type, e.object_id)], signature_check=checks.get(e.seq))
        for e in events
    ]


def _signature_checks(events: Sequence[AuditEvent]) -> dict[int, SignatureCheck]:
    """seq → the check of the signature the event records: one query for the signatures, one hash per record."""
    wanted: dict[int, int] = {}
    for event in events:
        signature = (event.after or {}).get("signature") if isinstance(event.after, dict) else None
        if isinstance(signature, dict) and isinstance(signature.get("id"), int):
            wanted[event.seq] = signature["id"]
    if not wanted:
        return {}
    checks = signature_checks_for(Signature.objects.filter(pk__in=set(wanted.values())))
    return {seq: checks[pk] for seq, pk in wanted.items() if pk in checks}


class _Found(NamedTuple):
    """One row of the lookup: the same columns from every branch."""

    kind: str
    pk: int
    name: str | None
    dataset_id: int | None
    dataset_name: str | None
    extra: int | None  # a model version's training run (its page)


def audit_object_labels(events: Sequence[AuditEvent]) -> dict[tuple[str, str], ObjectLabel]:
    """(object_type, object_id) → its label, for every event given; one query (none for no events)."""
    wanted: dict[str, set[int]] = defaultdict(set)
    for event in events:
        kind = _SAME_ROWS_AS.get(event.object_type, event.object_type)
        if kind in _BRANCHES and event.object_id.isascii() and event.object_id.isdigit():
            wanted[kind].add(int(event.object_id))
        if event.dataset_id is not None:  # named even when the object is not found
            wanted["dataset"].add(event.dataset_id)
    branches = [_BRANCHES[kind](pks) for kind, pks in sorted(wanted.items())]
    found: dict[tuple[str, str], _Found] = {}
    if branches:
        lookup = branches[0].union(*branches[1:], all=True) if len(branches) > 1 else branches[0]
        for row in lookup:
            hit = _Found(*row)
            found[(hit.kind, str(hit.pk))] = hit
    datasets = {pk: hit.name or "" for (kind, pk), hit in found.items() if kind == "dataset"}
    labels: dict[tuple[str, str], ObjectLabel] = {}
    for event in events:
        key = (event.object_type, event.object_id)
        if key in labels:
            continue
        hit = found.get((_SAME_ROWS_AS.get(event.object_type, event.object_type), event.object_id))
        if hit is None:
            labels[key] = _from_the_record(event, datasets.get(str(event.dataset_id), ""))
        else:
            labels[key] = _label(event.object_type, hit)
    return labels


def _label(object_type: str, hit: _Found) -> ObjectLabel:
    name, pk, dataset = hit.name or "", hit.pk, hit.dataset_name or ""
    match object_type:
        case "item":
            return ObjectLabel("item", name, dataset, reverse("governance:item_history", args=[pk]))
        case "import_batch":
            url = reverse("annotations:batch_detail", args=[hit.dataset_id, pk])
            return ObjectLabel(f"import #{pk}", name, dataset, url)
        case "model_version":
            return ObjectLabel("model", f"v{name}", dataset, reverse("models_app:run_detail", args=[hit.extra]))
        case "training_run":
            return ObjectLabel("training run", str(pk), dataset, reverse("models_app:run_detail", args=[pk]))
        case "dataset_snapshot":
            return ObjectLabel("training snapshot", str(pk), dataset)
        case "retraining_policy":
            return ObjectLabel("retraining policy", "", dataset, reverse("models_app:overview", args=[hit.dataset_id]))
        case "promotion_request":
            url = reverse("governance:promotion_detail", args=[pk])
            return ObjectLabel("promotion request", f"#{pk} (v{name})", dataset, url)
        case "token":
            return ObjectLabel("API token of", name)
        case "dataset":
            return ObjectLabel("dataset", name, "", reverse("annotations:dataset_detail", args=[pk]))
        case "datasetmembership":
            return ObjectLabel("membership of", name, dataset)
        case _:
            return ObjectLabel(_NOUNS.get(object_type, object_type), name, dataset)


def _from_the_record(event: AuditEvent, dataset: str) -> ObjectLabel:
    """A label for an object the database no longer has (or never had a row for)."""
    noun = _NOUNS.get(event.object_type, event.object_type.replace("_", " "))
    for side in (event.after, event.before):
        if isinstance(side, dict):
            for key in ("name", "username", "file_name", "external_id", "user"):
                if isinstance(side.get(key), str) and side[key]:
                    return ObjectLabel(noun=noun, name=side[key], dataset=dataset)
    return ObjectLabel(noun=noun or "—", name=event.object_id, dataset=dataset)


# --- the branches of the one query ---------------------------------------------------------------------------
# Every branch selects the same six columns, typed alike, so they UNION on SQLite and PostgreSQL alike.

_TEXT = CharField()
_INT = BigIntegerField()
# Typed NULLs: a bare NULL parameter is text to PostgreSQL, which then refuses to UNION it with bigint.
_NO_INT = Cast(Value(None), _INT)
_NO_TEXT = Cast(Value(None), _TEXT)


def _branch(
    queryset: QuerySet[Any],
    kind: str,
    pks: set[int],
    *,
    name: Any,
    dataset: bool = True,
    extra: Any = _NO_INT,
) -> QuerySet[Any]:
    return (
        queryset.filter(pk__in=pks)
        .order_by()
        .annotate(
            k=Value(kind, output_field=_TEXT),
            i=Cast("pk", _INT),
            n=Cast(name, _TEXT) if name is not None else _NO_TEXT,
            d=Cast("dataset_id", _INT) if dataset else _NO_INT,
            dn=Cast("dataset__name", _TEXT) if dataset else _NO_TEXT,
            x=extra,
        )
        .values_list("k", "i", "n", "d", "dn", "x")
    )


def _users(pks: set[int]) -> QuerySet[Any]:
    return _branch(get_user_model()._default_manager.all(), "user", pks, name=F("username"), dataset=False)


_BRANCHES: dict[str, Callable[[set[int]], QuerySet[Any]]] = {
    "item": lambda pks: _branch(Item.objects.all(), "item", pks, name=F("external_id")),
    "import_batch": lambda pks: _branch(ImportBatch.objects.all(), "import_batch", pks, name=F("file_name")),
    "model_version": lambda pks: _branch(
        ModelVersion.objects.all(),
        "model_version",
        pks,
        name=F("version"),
        extra=Cast("training_run_id", _INT),
    ),
    "training_run": lambda pks: _branch(TrainingRun.objects.all(), "training_run", pks, name=None),
    "dataset_snapshot": lambda pks: _branch(DatasetSnapshot.objects.all(), "dataset_snapshot", pks, name=None),
    "retraining_policy": lambda pks: _branch(RetrainingPolicy.objects.all(), "retraining_policy", pks, name=None),
    "promotion_request": lambda pks: (
        PromotionRequest.objects.filter(pk__in=pks)
        .order_by()
        .annotate(
            k=Value("promotion_request", output_field=_TEXT),
            i=Cast("pk", _INT),
            n=Cast("model_version__version", _TEXT),
            d=Cast("model_version__dataset_id", _INT),
            dn=Cast("model_version__dataset__name", _TEXT),
            x=_NO_INT,
        )
        .values_list("k", "i", "n", "d", "dn", "x")
    ),
    "user": _users,
    "group": lambda pks: _branch(Group.objects.all(), "group", pks, name=F("name"), dataset=False),
    "dataset": lambda pks: (
        Dataset.objects.filter(pk__in=pks)
        .order_by()
        .annotate(
            k=Value("dataset", output_field=_TEXT),
            i=Cast("pk", _INT),
            n=Cast("name", _TEXT),
            d=Cast("pk", _INT),
            dn=Cast("name", _TEXT),
            x=_NO_INT,
        )
        .values_list("k", "i", "n", "d", "dn", "x")
    ),
    "feature": lambda pks: _branch(Feature.objects.all(), "feature", pks, name=F("name")),
    "labelclass": lambda pks: _branch(LabelClass.objects.all(), "labelclass", pks, name=F("name")),
    "datasetmembership": lambda pks: _branch(
        DatasetMembership.objects.all(), "datasetmembership", pks, name=F("user__username")
    ),
}

# A token's audit id is its user's id (governance.admin.AuditedTokenAdmin): the user row names it.
_SAME_ROWS_AS = {"token": "user"}

# What each kind is called (a record that is gone, and the kinds named without a page of their own).
_NOUNS = {
    "item": "item",
    "import_batch": "import",
    "model_version": "model",
    "training_run": "training run",
    "dataset_snapshot": "training snapshot",
    "retraining_policy": "retraining policy",
    "promotion_request": "promotion request",
    "user": "user",
    "token": "API token of",
    "group": "role",
    "dataset": "dataset",
    "feature": "feature",
    "labelclass": "label",
    "datasetmembership": "membership of",
    # A narrative's events and a failed signing of it name it by its record type (governance/narratives.py).
    "document_narrative": "narrative",
}
