"""Reads with their permission checks. Views never fetch a dataset or item bare."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import PermissionDenied
from django.db import connection
from django.db.models import Count, Exists, OuterRef, QuerySet
from django.http import Http404
from django.utils import timezone

from annotations.counters import LABELLED_AT_IMPORT, PURGED, STATE, dataset_counts, waiting_count
from annotations.models import Dataset, DatasetMembership, GoldLabel, ImportBatch, Item, LabelClass, Review
from workflow_site import sql_rows
from workflow_site.access import (
    NOT_IN_YOUR_DATASETS,
    AnyUser,
    Role,
    has_role,
    missing_record,
    require_role,
)
from workflow_site.prepared_sql import prepared_cursor


def datasets_for_user(*, user: AnyUser) -> QuerySet[Dataset]:
    """Auditors see every dataset; everyone else the datasets they belong to."""
    if has_role(user, Role.AUDITOR):
        return Dataset.objects.all()
    if not has_role(user, Role.REVIEWER, Role.ADJUDICATOR, Role.MODEL_ADMIN):
        return Dataset.objects.none()
    return Dataset.objects.filter(memberships__user=user)


def _is_member_sql(dataset_id_sql: str) -> str:
    """SQL: whether the user (the statement's first parameter) is a member of the dataset `dataset_id_sql`."""
    return (
        f"EXISTS(SELECT 1 FROM {sql_rows.table(DatasetMembership)} m"
        f" WHERE m.dataset_id = {dataset_id_sql} AND m.user_id = %s)"
    )


def dataset_get_for_user(*, user: AnyUser, pk: int, roles: tuple[Role, ...]) -> Dataset:
    """The dataset, if the user holds one of `roles` and may see it.

    Auditors (when AUDITOR is among `roles`) read every dataset; other roles
    need membership. A dataset that does not exist is a 404; one the user may
    not touch is a 403.
    """
    require_role(user, *roles)
    reads_every_dataset = Role.AUDITOR in roles and has_role(user, Role.AUDITOR)
    if not sql_rows.pk_in_range(Dataset, pk):
        raise missing_record(user, roles, "dataset")
    # The membership is asked in the dataset's own statement, written as SQL: every review step
    # asks for the dataset, and the ORM's query building would cost more than the answer.
    with prepared_cursor() as cursor:
        cursor.execute(
            f"SELECT {sql_rows.columns(Dataset, 'd')}, {_is_member_sql('d.id')}"
            f" FROM {sql_rows.table(Dataset)} d WHERE d.id = %s",
            [user.pk, pk],
        )
        row = cursor.fetchone()
    if row is None:
        raise missing_record(user, roles, "dataset")
    dataset_values, (is_member,) = sql_rows.split(row, Dataset)
    if not reads_every_dataset and not is_member:
        raise PermissionDenied(NOT_IN_YOUR_DATASETS)
    return sql_rows.build(Dataset, dataset_values)


def item_get_for_user(
    *,
    user: AnyUser,
    pk: int,
    roles: tuple[Role, ...],
    related: tuple[str, ...] = ("batch", "predicted_label"),
) -> Item:
    """The item, if the user holds one of `roles` and may see its dataset (the rule of dataset_get_for_user).

    The rule is require_dataset_access's (auditors, when AUDITOR is among `roles`,
    read every dataset; the other roles need a membership), with the membership
    asked in the item's own statement (an EXISTS) instead of one of its own:
    the review loop fetches an item on every answer. A missing item, or one in a
    dataset the user may not touch, is refused before anything of it is returned.
    `related` is what else is read with it (as select_related would; "batch" and
    "predicted_label"); its dataset always is.
    """
    require_role(user, *roles)
    reads_every_dataset = Role.AUDITOR in roles and has_role(user, Role.AUDITOR)
    if not sql_rows.pk_in_range(Item, pk):
        raise missing_record(user, roles, "item")
    # One fixed statement per `related`, not the ORM's: every answer runs this (workflow_site/sql_rows.py).
    joined = [_ITEM_RELATED[name] for name in related]
    select = ", ".join(
        [sql_rows.columns(Item, "i"), sql_rows.columns(Dataset, "d")]
        + [sql_rows.columns(model, alias) for _, model, alias in joined]
    )
    joins = "".join(
        f" LEFT JOIN {sql_rows.table(model)} {alias} ON {alias}.id = i.{column}" for column, model, alias in joined
    )
    with prepared_cursor() as cursor:
        cursor.execute(
            f"SELECT {select}, {_is_member_sql('i.dataset_id')}"
            f" FROM {sql_rows.table(Item)} i JOIN {sql_rows.table(Dataset)} d ON d.id = i.dataset_id{joins}"
            " WHERE i.id = %s",
            [user.pk, pk],
        )
        row = cursor.fetchone()
    if row is None:
        raise missing_record(user, roles, "item")
    *parts, (is_member,) = sql_rows.split(row, Item, Dataset, *(model for _, model, _ in joined))
    if not reads_every_dataset and not is_member:
        raise PermissionDenied(NOT_IN_YOUR_DATASETS)
    item = sql_rows.build(Item, parts[0])
    item.dataset = sql_rows.build(Dataset, parts[1])
    for (name, (_, model, _)), values in zip(zip(related, joined, strict=True), parts[2:], strict=True):
        setattr(item, name, sql_rows.build_optional(model, values))
    return item


# What item_get_for_user can read with an item: the foreign key's column, the model, an alias.
_ITEM_RELATED = {
    "batch": ("batch_id", ImportBatch, "b"),
    "predicted_label": ("predicted_label_id", LabelClass, "l"),
}


def item_answer_target_for_user(
    *, user: AnyUser, pk: int, roles: tuple[Role, ...], label_name: str | None
) -> tuple[int, LabelClass | None]:
    """The dataset id of the item an answer is for, and the dataset's label called `label_name`.

    The access rule is item_get_for_user's, asked in the same single query that
    reads the label (the review loop runs this on every answer; the answer
    itself locks and reads the item). The label is None when `label_name` is
    None or names no label of the item's dataset; it carries its id, dataset
    and name (its other fields load if asked for).
    """
    require_role(user, *roles)
    reads_every_dataset = Role.AUDITOR in roles and has_role(user, Role.AUDITOR)
    if not sql_rows.pk_in_range(Item, pk):
        raise missing_record(user, roles, "item")
    with prepared_cursor() as cursor:
        cursor.execute(
            f"SELECT i.dataset_id, {_is_member_sql('i.dataset_id')},"
            f" (SELECT l.id FROM {sql_rows.table(LabelClass)} l WHERE l.dataset_id = i.dataset_id AND l.name = %s)"
            f" FROM {sql_rows.table(Item)} i WHERE i.id = %s",
            [user.pk, label_name, pk],
        )
        row = cursor.fetchone()
    if row is None:
        raise missing_record(user, roles, "item")
    dataset_id, is_member, label_id = row
    if not reads_every_dataset and not is_member:
        raise PermissionDenied(NOT_IN_YOUR_DATASETS)
    label = None
    if label_id is not None:
        label = LabelClass.from_db(connection.alias, ["id", "dataset_id", "name"], [label_id, dataset_id, label_name])
    return dataset_id, label


def batch_get(*, dataset: Dataset, pk: int) -> ImportBatch:
    """A batch of a dataset the caller already obtained through dataset_get_for_user."""
    try:
        return ImportBatch.objects.select_related("uploaded_by").get(pk=pk, dataset=dataset)
    except ImportBatch.DoesNotExist as exc:
        raise Http404("No such import batch.") from exc


def datasets_queue_counts(*, datasets: list[Dataset]) -> dict[int, dict[str, int]]:
    """Dataset id → items by state, from the counters (annotations/counters.py): one query for
    all the datasets, whatever their size. `done` splits into `reviewed` (by a person) and
    `labelled_at_import` (a labelled file's rows: done, but nobody reviewed them)."""
    totals = dataset_counts(dataset_ids=[d.pk for d in datasets])
    result = {}
    for dataset_id, counters in totals.items():
        counts = {state: counters.get(f"{STATE}{state}", 0) for state in ("open", "done", "holdout")}
        counts["total"] = sum(counts.values())
        # An open item purged by retention is never served: not awaiting review, still one of the total.
        counts["open"] = waiting_count(counters, Item.QueueState.OPEN)
        counts["purged_unreviewed"] = counters.get(f"{PURGED}{Item.QueueState.OPEN}", 0)
        counts["labelled_at_import"] = counters.get(LABELLED_AT_IMPORT, 0)
        counts["reviewed"] = counts["done"] - counts["labelled_at_import"]
        result[dataset_id] = counts
    return result


def dataset_queue_counts(*, dataset: Dataset) -> dict[str, int]:
    """One dataset's items by state (see datasets_queue_counts)."""
    return datasets_queue_counts(datasets=[dataset])[dataset.pk]


def import_batches_labelled_counts(*, batches: list[ImportBatch]) -> dict[int, int]:
    """Batch id → rows of a review-pool batch that came with a label (gold labels from the import)."""
    review_batches = [b.pk for b in batches if b.purpose == ImportBatch.Purpose.REVIEW]
    rows = (
        GoldLabel.objects.filter(item__batch__in=review_batches, origin=GoldLabel.Origin.IMPORT)
        .values("item__batch")
        .annotate(n=Count("id"))
    )
    return {row["item__batch"]: row["n"] for row in rows}


def reviewer_answers_today(*, dataset: Dataset, reviewer: AnyUser) -> int:
    """Items of this dataset the reviewer answered since midnight (TIME_ZONE) whose answer is still in force.

    A revision replaces its answer (the item counts once) and an undo withdraws it (the item no longer
    counts, unless answered again); a skip is no answer. "In force" is "superseded by no review"
    (revisions and undos point at what they replace), asked per review of today through the supersedes
    index. One statement over the reviewer's reviews of today (review_reviewer_created): what one person
    answers in a day, whatever the size of the dataset.
    """
    midnight = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    replaced = Review.objects.filter(supersedes_id=OuterRef("pk"))
    return (
        Review.objects.filter(reviewer=reviewer, created_at__gte=midnight, item__dataset_id=dataset.pk)
        .exclude(decision__in=(Review.Decision.SKIP, Review.Decision.WITHDRAWN))
        .filter(~Exists(replaced))
        # Distinct items: an item reopened for a second round and answered again today is one item.
        .aggregate(n=Count("item_id", distinct=True))["n"]
    )


def dataset_open_count(*, dataset: Dataset) -> int:
    """Items awaiting review, from the counters: a few rows, not the dataset's items."""
    return waiting_count(dataset_counts(dataset_ids=[dataset.pk])[dataset.pk], Item.QueueState.OPEN)


def reviewer_open_answered_count(*, dataset: Dataset, reviewer: AnyUser) -> int:
    """Open items this reviewer has answered (they wait for other reviewers under overlap): not theirs to do.

    An answer they undid is no answer (the item is theirs again), as in reviewer_answers_today. Joins the
    reviewer's reviews (review_reviewer_created) to their items: what one person answered, not the
    dataset. Only asked when the dataset's overlap is above 1 (otherwise an answer closes it).
    """
    return (
        Review.objects.filter(reviewer=reviewer, item__dataset_id=dataset.pk, item__queue_state=Item.QueueState.OPEN)
        .exclude(decision__in=(Review.Decision.SKIP, Review.Decision.WITHDRAWN))
        .filter(~Exists(Review.objects.filter(supersedes_id=OuterRef("pk"))))
        .values("item_id")
        .distinct()
        .count()
    )


def reviewer_left_count(*, dataset: Dataset, reviewer: AnyUser, open_count: int) -> int:
    """Open items still for this reviewer: `open_count` (dataset_open_count) less the open items they answered.

    With overlap 1 an answer closes its item, so nothing open is already theirs: `open_count` itself, no query.
    """
    if dataset.overlap <= 1:
        return open_count
    return max(0, open_count - reviewer_open_answered_count(dataset=dataset, reviewer=reviewer))


def reviewer_agreement_so_far(*, dataset: Dataset, reviewer: AnyUser) -> tuple[int, int]:
    """(agreed, compared): the reviewer's answers in force that match items' settled gold labels.

    Compared only where the gold label was settled by others too (consensus under overlap, or an
    adjudicator), so a lone answer that became gold does not count as agreeing with itself. Reads
    this reviewer's reviews (one statement, review_reviewer_created); shown on the review page's
    full load, not on every card.
    """
    rows = (
        Review.objects.filter(
            reviewer=reviewer,
            item__dataset_id=dataset.pk,
            item__gold_label__origin__in=(GoldLabel.Origin.CONSENSUS, GoldLabel.Origin.ADJUDICATION),
        )
        .exclude(decision__in=(Review.Decision.SKIP, Review.Decision.ADJUDICATE))
        .order_by("created_at", "pk")
        .values_list("item_id", "decision", "label_id", "item__gold_label__label_id")
    )
    in_force: dict[int, tuple[str, int | None, int]] = {}
    for item_id, decision, label_id, gold_id in rows:
        if decision == Review.Decision.WITHDRAWN:
            in_force.pop(item_id, None)
        else:
            in_force[item_id] = (decision, label_id, gold_id)
    agreed = sum(1 for _, label_id, gold_id in in_force.values() if label_id == gold_id)
    return agreed, len(in_force)


@dataclass(frozen=True)
class ReviewerProgress:
    """What the review card says of a reviewer's progress in a dataset (the progress API gives the same)."""

    answers_today: int
    open_count: int
    left_for_you: int
    agreed: int
    compared: int


def reviewer_progress(*, dataset: Dataset, reviewer: AnyUser) -> ReviewerProgress:
    """The card's figures for a dataset the caller obtained through dataset_get_for_user.

    Each read is the card's own (the selectors above), so the two never disagree: three or four
    statements, none of which grows with the dataset.
    """
    open_count = dataset_open_count(dataset=dataset)
    agreed, compared = reviewer_agreement_so_far(dataset=dataset, reviewer=reviewer)
    return ReviewerProgress(
        answers_today=reviewer_answers_today(dataset=dataset, reviewer=reviewer),
        open_count=open_count,
        left_for_you=reviewer_left_count(dataset=dataset, reviewer=reviewer, open_count=open_count),
        agreed=agreed,
        compared=compared,
    )
