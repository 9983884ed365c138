"""Governance reads, each with its permission check."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from django.db import connection
from django.db.models import Q, QuerySet
from django.utils import timezone

from annotations.models import Dataset
from annotations.selectors import dataset_get_for_user
from governance.audit_search import search_condition, search_terms
from governance.envelope import envelope_active
from governance.models import (
    AuditChainHead,
    AuditEvent,
    AuditVerificationRun,
    ChangeEnvelopeSignoff,
    ChangeEnvelopeVersion,
    DataAccess,
    PromotionRequest,
)
from governance.signing import signature_checks_for
from models_app.models import ModelVersion
from models_app.selectors import ChampionComparison, champion_comparisons
from workflow_site.access import MODEL_READ_ROLES, AnyUser, Role, missing_record, require_dataset_access, require_role


def audit_verification_run_get_for_user(*, user: AnyUser, pk: int) -> AuditVerificationRun:
    """A requested audit verification (any auditor's: the trail is the site's, not one person's)."""
    require_role(user, Role.AUDITOR)  # first: a 404 must not tell others which ids exist
    try:
        return AuditVerificationRun.objects.get(pk=pk)
    except AuditVerificationRun.DoesNotExist as exc:
        raise missing_record(user, (Role.AUDITOR,), "audit verification") from exc


def promotion_get_for_user(*, user: AnyUser, pk: int, roles: tuple[Role, ...]) -> PromotionRequest:
    # Role first, as dataset_get_for_user does: without it a 404 would reveal which ids exist.
    require_role(user, *roles)
    try:
        request = PromotionRequest.objects.select_related(
            "model_version__dataset",
            "model_version__training_run",
            "requested_by",
            "decided_by",
            "signature",
            "request_signature",
        ).get(pk=pk)
    except PromotionRequest.DoesNotExist as exc:
        raise missing_record(user, roles, "promotion request") from exc
    require_dataset_access(user, request.model_version.dataset, roles)
    return request


@dataclass(frozen=True)
class AuditFilters:
    actor: str = ""
    action: str = ""
    dataset_id: int | None = None
    date_from: date | None = None
    date_to: date | None = None
    search: str = ""  # free text (governance/audit_search.py), already validated by the form

    def as_record(self) -> dict[str, Any]:
        """The filters as an audit event records them: only those set, dates as ISO text."""
        values = {
            "actor": self.actor,
            "action": self.action,
            "dataset_id": self.dataset_id,
            "date_from": self.date_from.isoformat() if self.date_from else None,
            "date_to": self.date_to.isoformat() if self.date_to else None,
            "search": self.search,
        }
        return {key: value for key, value in values.items() if value not in (None, "")}


def audit_events_for_user(*, user: AnyUser, filters: AuditFilters) -> QuerySet[AuditEvent]:
    require_role(user, Role.AUDITOR)
    events = AuditEvent.objects.all()
    if filters.actor:
        events = events.filter(actor_username=filters.actor)
    if filters.action:
        events = events.filter(action=filters.action)
    if filters.dataset_id is not None:
        events = events.filter(dataset_id=filters.dataset_id)
    tz = timezone.get_current_timezone()
    if filters.date_from:
        events = events.filter(created_at__gte=datetime.combine(filters.date_from, time.min, tzinfo=tz))
    if filters.date_to:
        events = events.filter(created_at__lte=datetime.combine(filters.date_to, time.max, tzinfo=tz))
    if filters.search:
        events = events.filter(search_condition(search_terms(filters.search), vendor=connection.vendor))
    return events.order_by("-seq")


@dataclass(frozen=True)
class PromotionsOverview:
    """What the promotions page shows for one dataset."""

    dataset: Dataset
    candidates: list[ModelVersion]
    champion: ModelVersion | None
    comparisons: dict[int, ChampionComparison]  # each candidate against the current champion

    def candidates_compared(self) -> list[tuple[ModelVersion, ChampionComparison]]:
        return [(v, self.comparisons[v.pk]) for v in self.candidates]

    def candidates_with_warnings(self) -> list[tuple[ModelVersion, list[str]]]:
        found = ((v, self.comparisons[v.pk].warnings()) for v in self.candidates)
        return [(v, warnings) for v, warnings in found if warnings]


def promotions_overview_get_for_user(*, user: AnyUser, dataset_id: int) -> PromotionsOverview:
    dataset = dataset_get_for_user(user=user, pk=dataset_id, roles=MODEL_READ_ROLES)
    versions = list(ModelVersion.objects.filter(dataset=dataset))
    champion = next((v for v in versions if v.is_champion), None)
    candidates = [v for v in versions if not v.is_champion]
    return PromotionsOverview(
        dataset=dataset,
        candidates=candidates,
        champion=champion,
        comparisons=champion_comparisons(versions=candidates, champion=champion),
    )


PROMOTION_PAGE_SIZE = 50


@dataclass(frozen=True)
class PromotionPage:
    """One page of a dataset's promotion requests, newest first; `older` is the id to ask for the next page
    with (None on the last), found by key, as the audit list is."""

    requests: list[PromotionRequest]
    older: int | None


def promotion_requests_page(
    *, user: AnyUser, dataset: Dataset, status: str = "", before: int | None = None
) -> PromotionPage:
    """The requests of `dataset` that `user` may see, with `status` ("" for all), below id `before`.

    Precondition: `dataset` came from dataset_get_for_user with the model-read roles. Drafts are their
    requester's work in progress: listed for them only. Filtered and paged in the database, so the page
    costs the same whatever the number of requests the dataset has gathered over the years.
    """
    rows = PromotionRequest.objects.filter(model_version__dataset=dataset).filter(
        ~Q(status=PromotionRequest.Status.DRAFT) | Q(requested_by_id=user.pk)
    )
    if status:
        rows = rows.filter(status=status)
    if before is not None:
        rows = rows.filter(pk__lt=before)
    found = list(
        rows.select_related("model_version", "requested_by", "decided_by", "signature", "request_signature").order_by(
            "-pk"
        )[: PROMOTION_PAGE_SIZE + 1]
    )
    more = len(found) > PROMOTION_PAGE_SIZE
    found = found[:PROMOTION_PAGE_SIZE]
    return PromotionPage(requests=found, older=found[-1].pk if more else None)


AUDIT_PAGE_SIZE = 50


@dataclass(frozen=True)
class AuditPage:
    """One page of events, newest first, found by key: `older` / `newer` are the seq bounds
    for the next page each way (None at either end). No COUNT and no OFFSET, so a page
    deep in a million events costs what the first costs."""

    events: list[AuditEvent]
    older: int | None
    newer: int | None


def audit_page(events: QuerySet[AuditEvent], *, before: int | None = None, after: int | None = None) -> AuditPage:
    """The page of `events` just below seq `before` (older) or just above seq `after` (newer), else the newest."""
    size = AUDIT_PAGE_SIZE
    if after is not None:
        rows = list(events.filter(seq__gt=after).order_by("seq")[: size + 1])
        more_newer = len(rows) > size
        rows = list(reversed(rows[:size]))
        more_older = bool(rows) and events.filter(seq__lt=rows[-1].seq).exists()
    else:
        page = events.filter(seq__lt=before) if before is not None else events
        rows = list(page.order_by("-seq")[: size + 1])
        more_older = len(rows) > size
        rows = rows[:size]
        more_newer = before is not None and bool(rows) and events.filter(seq__gt=rows[0].seq).exists()
    return AuditPage(
        events=rows,
        older=rows[-1].seq if rows and more_older else None,
        newer=rows[0].seq if rows and more_newer else None,
    )


def _distinct_by_index(column: str) -> list[str]:
    """Distinct values of an indexed audit column by a "loose index scan": one index probe per
    value (a recursive CTE asking for the next larger value), not a pass over every event.
    PostgreSQL and SQLite both run it; ~40 actions cost ~40 probes at a million events."""
    table = connection.ops.quote_name(AuditEvent._meta.db_table)
    col = connection.ops.quote_name(column)
    sql = f"""
        WITH RECURSIVE walk(value) AS (
            SELECT MIN({col}) FROM {table}
            UNION ALL
            SELECT (SELECT MIN({col}) FROM {table} WHERE {col} > walk.value) FROM walk WHERE walk.value IS NOT NULL
        )
        SELECT value FROM walk WHERE value IS NOT NULL AND value <> ''
    """
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return [row[0] for row in cursor.fetchall()]


def audit_actions() -> list[str]:
    """Every action name in the trail, for the filter menu (index audit_action_seq)."""
    return _distinct_by_index("action")


def audit_actors() -> list[str]:
    """Every actor name in the trail, for the filter menu (index audit_actor_name_seq)."""
    return _distinct_by_index("actor_username")


def item_history_for_user(*, user: AnyUser, item_id: int) -> dict[str, Any]:
    """Everything about one item: data, predictions, reviews, gold label, snapshots, events."""
    from annotations.models import GoldLabel, Item, Review
    from annotations.selectors import item_get_for_user
    from models_app.models import Prediction, SnapshotLabel

    item: Item = item_get_for_user(user=user, pk=item_id, roles=(Role.AUDITOR,))
    return {
        "item": item,
        "features": list(item.dataset.features.all()),
        "predictions": list(
            Prediction.objects.filter(item=item).select_related("model_version", "label").order_by("created_at")
        ),
        "reviews": list(
            Review.objects.filter(item=item).select_related("reviewer", "label", "shown_label").order_by("created_at")
        ),
        "gold_label": GoldLabel.objects.filter(item=item).select_related("label", "review__reviewer").first(),
        "snapshots": list(
            SnapshotLabel.objects.filter(item=item).select_related("snapshot", "label").order_by("snapshot_id")
        ),
        "events": list(AuditEvent.objects.filter(object_type="item", object_id=str(item.pk)).order_by("seq")),
        "accesses": list(DataAccess.objects.filter(item_id=item.pk).select_related("user")[:50]),
    }


def audit_chain_verify() -> tuple[int, Any]:
    """Walk the whole chain in order: (events checked, the first broken link or None)."""
    from governance.chain_walk import chain_walk

    return chain_walk(head=chain_head())


def chain_head() -> tuple[int, str]:
    """The last seq and hash the chain recorded (0 and the genesis hash for an empty chain)."""
    from governance.audit_chain import GENESIS_HASH

    head = AuditChainHead.objects.filter(singleton=True).values_list("seq", "hash").first()
    return head or (0, GENESIS_HASH)


@dataclass(frozen=True)
class EnvelopeVersionRow:
    """One envelope version as its page shows it: its sign-offs, each signature checked against the record now."""

    version: ChangeEnvelopeVersion
    authored: ChangeEnvelopeSignoff | None
    approval: ChangeEnvelopeSignoff | None
    checks: dict[int, Any]  # signature id → SignatureCheck
    status: str


@dataclass(frozen=True)
class EnvelopeOverview:
    dataset: Dataset
    active: ChangeEnvelopeVersion | None
    rows: list[EnvelopeVersionRow]


def envelope_overview_get_for_user(*, user: AnyUser, dataset_id: int) -> EnvelopeOverview:
    """A dataset's change envelope, versions newest first (model admins of the dataset and auditors)."""
    dataset = dataset_get_for_user(user=user, pk=dataset_id, roles=MODEL_READ_ROLES)
    active = envelope_active(dataset.pk)
    versions = list(ChangeEnvelopeVersion.objects.filter(dataset=dataset).select_related("authored_by"))
    signoffs: dict[tuple[int, str], ChangeEnvelopeSignoff] = {
        (s.version_id, s.kind): s
        for s in ChangeEnvelopeSignoff.objects.filter(version__dataset=dataset).select_related("signer", "signature")
    }
    # Every sign-off's signature checked against its version as it is now: one query for them all.
    all_checks = signature_checks_for(s.signature for s in signoffs.values())
    rows = []
    for version in versions:
        authored = signoffs.get((version.pk, ChangeEnvelopeSignoff.Kind.AUTHORED))
        approval = signoffs.get((version.pk, ChangeEnvelopeSignoff.Kind.APPROVAL))
        checks = {s.signature_id: all_checks[s.signature_id] for s in (authored, approval) if s is not None}
        if active is not None and version.pk == active.pk:
            status = "active"
        elif approval is not None:
            status = "superseded"
        elif active is not None and active.number > version.number:
            status = "never approved (a later version is active)"
        elif authored is not None:
            status = "signed by its author, awaiting approval"
        else:
            status = "draft, not signed"
        rows.append(EnvelopeVersionRow(version, authored, approval, checks, status))
    return EnvelopeOverview(dataset=dataset, active=active, rows=rows)


def envelope_version_get_for_user(*, user: AnyUser, pk: int, roles: tuple[Role, ...]) -> ChangeEnvelopeVersion:
    require_role(user, *roles)
    try:
        version = ChangeEnvelopeVersion.objects.select_related("dataset").get(pk=pk)
    except ChangeEnvelopeVersion.DoesNotExist as exc:
        raise missing_record(user, roles, "change envelope version") from exc
    require_dataset_access(user, version.dataset, roles)
    return version
