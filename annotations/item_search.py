"""Items a person can find (issue 8, point 7): one dataset's items, filtered, sorted, paged by key.

Design note. The list serves model admins, adjudicators and auditors (every item of the
dataset) and reviewers (only the items they answered themselves: the selector enforces
it, whatever the caller asks). It must stay an index range scan at a million items, so:

- Paging is by key, never by offset or count: a cursor is the last row's sort value and
  id (`0.53_1234`), and the next page is the rows after it in (value, id) order. Page
  10,000 costs what page 1 costs.
- Each sort has an index that starts with the dataset and ends with the id
  (migration 0019): id, predicted confidence, observed_at. Items without a value (no
  prediction yet, no observation time) come after the others, by id: the list is two
  index ranges walked one after the other, and a cursor says which one it is in
  (`null_1234`), so nobody's items silently drop out of a sort.
- Filters on the item row (state, predicted label, confidence range, observed dates)
  have indexes of the same shape; the planner walks whichever range is narrower.
  Filters about reviews (reviewer, strategy, flag, review dates) are conditions on one
  review of the item, so "reviewed by Ann under the audit slice" means one review that
  is both: in id order the matching reviews' item ids, read from an index that ends
  with the item; in another order an EXISTS probed per item (see _filtered). The gold
  label is a join on its (label, item) index; disagreement is the adjudicate state or
  an adjudication review (a partial index).
- Known slow at 1M items (bench/item_list.py): an observed-date range in id order when
  dates rise with ids (the planner walks ids expecting matches early), and a rare
  strategy in confidence order.
- Sorting by the time of the last review is not offered: no column holds it, and a
  MAX over reviews cannot be walked by an index. The rows show it (a per-row lookup on
  review_item_reviewer, 100 at most).

Semantic checks (a range the wrong way round, an unknown label, a bad cursor) raise
ItemSearchInvalid naming the parameter, so the page and the API report them alike.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Exists, F, Max, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from annotations.models import Dataset, GoldLabel, Item, LabelClass, QueueStrategy, Review
from annotations.queue import STRATEGY_ADJUDICATION, STRATEGY_AUDIT_SLICE, STRATEGY_UNSCORED
from annotations.selectors import dataset_get_for_user
from workflow_site.access import DATASET_READ_ROLES, AnyUser, Role, has_role

ITEM_LIST_MAX = 500
# The roles that see every item of a dataset they may read; a reviewer sees their own answers only.
SEES_ALL_ITEMS = (Role.ADJUDICATOR, Role.MODEL_ADMIN, Role.AUDITOR)
# Who still sees the model's output when a model admin has switched it off for the dataset.
SEES_MODEL_WHEN_OFF = (Role.MODEL_ADMIN, Role.AUDITOR)
MODEL_HIDDEN = (
    "The model's output is switched off for this dataset: its predictions are not shown, filtered or sorted by."
)
# What a review's selection_strategy may say (annotations/queue.py).
SELECTION_STRATEGIES = (
    *QueueStrategy.values,
    STRATEGY_AUDIT_SLICE,
    STRATEGY_UNSCORED,
    STRATEGY_ADJUDICATION,
)
# Sort name → (Item field, or None for the id; descending?).
SORTS: dict[str, tuple[str | None, bool]] = {
    "id": (None, False),
    "-id": (None, True),
    "confidence": ("predicted_confidence", False),
    "-confidence": ("predicted_confidence", True),
    "observed": ("observed_at", False),
    "-observed": ("observed_at", True),
}
_NULL = "null"
# What the page's table shows, read as plain values: building four model instances per row (item,
# predicted label, gold label, its class) cost about three times the query itself.
_ROW_COLUMNS = {
    "pk": "id",
    "dataset_id": "dataset_id",
    "external_id": "external_id",
    "queue_state": "queue_state",
    "observed_at": "observed_at",
    "answers_count": "answers_count",
    "predicted_confidence": "predicted_confidence",
    "predicted_label": "predicted_label_id",
    "gold_label": "gold_label_id",
    "gold_origin": "gold_origin",
    "last_reviewed_at": "last_reviewed_at",
}
# What the API's row gives (annotations/dataset_apis.py ItemListRowSerializer): the item's own columns
# and the page's lookups.
_API_COLUMNS = (
    "id",
    "dataset_id",
    "external_id",
    "values",
    "source_file",
    "source_row",
    "observed_at",
    "prediction_id",
    "predicted_label_id",
    "predicted_confidence",
    "predicted_probabilities",
    "prediction_explanation",
    "lease_expires_at",
    "purged_at",
    "queue_state",
    "gold_label_id",
    "gold_origin",
    "answers_count",
    "last_reviewed_at",
)
_STATE_NAMES = dict(Item.QueueState.choices)
_ORIGIN_NAMES = dict(GoldLabel.Origin.choices)


@dataclass(frozen=True, slots=True)
class ItemApiRow:
    """One item as the API's list gives it: its columns (_API_COLUMNS) and its label classes by name."""

    id: int
    dataset_id: int
    external_id: str
    values: dict[str, Any]
    source_file: str
    source_row: int
    observed_at: dt.datetime | None
    prediction_id: int | None
    predicted_label_id: int | None
    predicted_confidence: float | None
    predicted_probabilities: dict[str, float] | None
    prediction_explanation: dict[str, Any] | None
    lease_expires_at: dt.datetime | None
    purged_at: dt.datetime | None
    queue_state: str
    gold_label_id: int | None
    gold_origin: str | None
    answers_count: int
    last_reviewed_at: dt.datetime | None
    predicted_label_name: str | None
    gold_label_name: str | None

    @property
    def pk(self) -> int:
        return self.id


@dataclass(frozen=True, slots=True)
class ItemRow:
    """One row of the page's table (the API reads whole items instead)."""

    pk: int
    dataset_id: int
    external_id: str
    queue_state: str
    observed_at: dt.datetime | None
    answers_count: int
    predicted_confidence: float | None
    predicted_label: str | None
    gold_label: str | None
    gold_origin: str | None
    last_reviewed_at: dt.datetime | None

    @property
    def state_display(self) -> str:
        return _STATE_NAMES.get(self.queue_state, self.queue_state)

    @property
    def gold_origin_display(self) -> str:
        return _ORIGIN_NAMES.get(self.gold_origin or "", "")


class ItemSearchInvalid(Exception):
    """A parameter that parsed but makes no sense here; `errors` maps its name to why."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class ItemFilters:
    """What to list. Empty/None means "any". Label filters are class names; dates are whole days, inclusive."""

    state: str = ""
    gold_label: str = ""
    predicted_label: str = ""
    min_confidence: float | None = None
    max_confidence: float | None = None
    strategy: str = ""
    reviewer_id: int | None = None
    disagreement: bool = False
    flagged: bool = False
    observed_from: dt.date | None = None
    observed_to: dt.date | None = None
    reviewed_from: dt.date | None = None
    reviewed_to: dt.date | None = None

    def problems(self) -> dict[str, str]:
        errors = {}
        if self.state and self.state not in Item.QueueState.values:
            errors["state"] = f"“{self.state}” is not a queue state ({', '.join(Item.QueueState.values)})."
        if self.strategy and self.strategy not in SELECTION_STRATEGIES:
            errors["strategy"] = f"“{self.strategy}” is not a selection strategy."
        for name in ("min_confidence", "max_confidence"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= 1:
                errors[name] = "A confidence is between 0 and 1."
        low, high = self.min_confidence, self.max_confidence
        if low is not None and high is not None and low > high:
            errors["max_confidence"] = "The highest confidence is below the lowest."
        for start, end in (("observed_from", "observed_to"), ("reviewed_from", "reviewed_to")):
            first, last = getattr(self, start), getattr(self, end)
            if first and last and first > last:
                errors[end] = "The last day is before the first day."
        return errors


@dataclass(frozen=True)
class ItemListScope:
    """A dataset as one user may list it: checked once, then used for the form and the query."""

    dataset: Dataset
    user: AnyUser
    own_only: bool  # a reviewer: only items they answered themselves
    labels: dict[str, LabelClass]
    # The stop switch is on and this user reviews (annotations/oversight.py): no prediction is shown to
    # them, nor can they filter or sort by one. Model admins and auditors still see it.
    model_hidden: bool = False

    def reviewers(self) -> list[Any]:
        """Whom the reviewer filter offers: the dataset's members with a reviewing role (yourself, for a reviewer)."""
        if self.own_only:
            return [self.user]
        users = get_user_model().objects.filter(
            dataset_memberships__dataset=self.dataset,
            groups__name__in=[Role.REVIEWER, Role.ADJUDICATOR],
        )
        return list(users.distinct().order_by("username"))


@dataclass
class ItemPage:
    scope: ItemListScope
    items: list[Any]  # ItemRow for the page, ItemApiRow (the item's values and the row's lookups) for the API
    sort: str
    next_after: str | None  # pass as `after` for the next page
    previous_before: str | None  # pass as `before` for the previous page
    paged: bool  # this is not the first page (a way back to it is worth showing)


def item_list_scope_for_user(
    *, user: AnyUser, dataset_id: int, roles: tuple[Role, ...] = DATASET_READ_ROLES
) -> ItemListScope:
    """The role check (before anything is read), then the dataset's label classes by name."""
    dataset = dataset_get_for_user(user=user, pk=dataset_id, roles=roles)
    own_only = not has_role(user, *SEES_ALL_ITEMS)
    labels = {label.name: label for label in dataset.label_classes.all()}
    model_hidden = dataset.model_output_off and not has_role(user, *SEES_MODEL_WHEN_OFF)
    return ItemListScope(dataset=dataset, user=user, own_only=own_only, labels=labels, model_hidden=model_hidden)


def items_search_for_user(
    *,
    user: AnyUser,
    dataset_id: int,
    filters: ItemFilters,
    sort: str = "id",
    after: str | None = None,
    before: str | None = None,
    limit: int = 100,
    roles: tuple[Role, ...] = DATASET_READ_ROLES,
    full_rows: bool = False,
    scope: ItemListScope | None = None,
) -> ItemPage:
    """One page of a dataset's items. `after`/`before` are cursors from an earlier page (not both).

    Raises PermissionDenied (not a member), Http404 (no such dataset, for an auditor) or
    ItemSearchInvalid (a parameter, named; a reviewer asking for someone else's answers too).
    `full_rows` reads whole items (the API): their values and prediction details, and what the
    page's row shows besides (`gold_label_name`, `gold_origin`, `last_reviewed_at`); the page
    reads only what its table shows. `scope`: what item_list_scope_for_user already returned for
    this user and dataset in this request (the page needs it for its form), so it is not read twice.
    """
    if scope is None or scope.user is not user or scope.dataset.pk != dataset_id:
        scope = item_list_scope_for_user(user=user, dataset_id=dataset_id, roles=roles)
    errors = filters.problems()
    if sort not in SORTS:
        errors["sort"] = f"“{sort}” is not a sort ({', '.join(SORTS)})."
    if not 1 <= limit <= ITEM_LIST_MAX:
        errors["limit"] = f"Give 1 to {ITEM_LIST_MAX} rows per page."
    if after and before:
        errors["before"] = "Give after or before, not both."
    for name in ("gold_label", "predicted_label"):
        wanted = getattr(filters, name)
        if wanted and wanted not in scope.labels:
            errors[name] = f"“{wanted}” is not a label class of this dataset."
    if scope.model_hidden:  # a filter or sort by the prediction would show it as surely as the column
        for name in ("predicted_label", "min_confidence", "max_confidence"):
            if getattr(filters, name) not in ("", None):
                errors[name] = MODEL_HIDDEN
        if SORTS.get(sort, (None,))[0] == "predicted_confidence":
            errors["sort"] = MODEL_HIDDEN
    if scope.own_only and filters.reviewer_id not in (None, user.pk):
        # As on the page, whose reviewer filter offers a reviewer only themselves: a bad value, not a 403.
        errors["reviewer"] = "A reviewer lists only the items they answered themselves: give your own id, or none."
    if errors:
        raise ItemSearchInvalid(errors)
    key, descending = SORTS[sort]
    cursor_name, cursor = ("before", before) if before else ("after", after)
    position = _cursor_parse(cursor, key, cursor_name) if cursor else None

    items = _filtered(scope, filters, by_id=key is None)
    if key is None and (filters.observed_from or filters.observed_to):
        narrowed = _few_observed_in_id_order(items, scope.dataset.pk, position, descending, bool(before), limit)
        items = items if narrowed is None else narrowed  # not `or`: a queryset's truth value reads its rows
    names = {label.pk: label.name for label in scope.labels.values()}
    if full_rows:
        # The same lookups as the page's rows, in the same query: the API's rows say what the page's say.
        # Plain values, not Item instances: building a page of models cost more than its query at 1M items.
        whole = items.annotate(**_row_lookups(scope)).values(*_API_COLUMNS)
        found, more = _walk(whole, key, descending, position, bool(before), limit)
        rows: list[Any] = [
            ItemApiRow(
                **row,
                predicted_label_name=names.get(row["predicted_label_id"]),
                gold_label_name=names.get(row["gold_label_id"]),
            )
            for row in found
        ]
    else:
        values = items.annotate(**_row_lookups(scope)).values(*_ROW_COLUMNS.values())
        found, more = _walk(values, key, descending, position, bool(before), limit)
        rows = []
        for row in found:
            row["predicted_label_id"] = names.get(row["predicted_label_id"])
            row["gold_label_id"] = names.get(row["gold_label_id"])
            if scope.model_hidden:
                row["predicted_label_id"] = row["predicted_confidence"] = None
            rows.append(ItemRow(*(row[column] for column in _ROW_COLUMNS.values())))
    if before:
        next_after = _cursor(rows[-1], key) if rows else None
        previous_before = _cursor(rows[0], key) if rows and more else None
    else:
        next_after = _cursor(rows[-1], key) if rows and more else None
        previous_before = _cursor(rows[0], key) if rows and after else None
    return ItemPage(
        scope=scope,
        items=rows,
        sort=sort,
        next_after=next_after,
        previous_before=previous_before,
        paged=bool(after) or (bool(before) and more),
    )


# At most this many items in an observed-time range are read to page them in id order (below).
FEW_OBSERVED = 20_000
# A walk of the id index that would skip more rows than this before the range's first item sorts
# the range's own ids instead.
FAR_IN_IDS = 100_000


def _few_observed_in_id_order(
    items: QuerySet[Item], dataset_id: int, position: tuple | None, descending: bool, backward: bool, limit: int
) -> QuerySet[Item] | None:
    """In id order, an observed-time range narrowed to the page's own ids, unless walking the id index is fine.

    Observed time rises with id in most datasets (rows are imported as they happen), so for a week
    in the middle of a year the planner's walk of the id index, expecting matches spread evenly,
    read half the table before the first one: 1 s at 1M items. So the range is first measured on its
    own index (item_list_observed: dataset, observed_at, id), from the end the walk starts at, up to
    FEW_OBSERVED entries, in the database (reading those ids into Python cost more than the rest):

    - all of them: the database sorts the range's ids and the page is picked from them (a week of a
      1M-item year, 19,000 items: an index-only scan and a top-N sort, a few ms);
    - more, and the first of them lies far along the walk: the same, over the whole range (44 ms for
      147,000 at 1M items);
    - more, and near: None, the walk as before, which meets them soon.
    """
    ascending = descending == backward  # the direction _walk reads in
    nearest_first = ("observed_at", "pk") if ascending else ("-observed_at", "-pk")
    nearest = items.order_by(*nearest_first).annotate(page_id=F("pk")).values("page_id")[: FEW_OBSERVED + 1]
    nearest_sql, nearest_params = nearest.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*), min(page_id), max(page_id) FROM ({nearest_sql}) AS nearest", nearest_params)
        count, lowest, highest = cursor.fetchone()
    start = position[2] if position is not None else None
    if count > FEW_OBSERVED:
        first = lowest if ascending else highest
        walk_from = start
        if walk_from is None:  # the walk starts at the dataset's first (or last) item
            ends = Item.objects.filter(dataset_id=dataset_id).order_by("pk" if ascending else "-pk")  # item_list_id
            walk_from = (ends.values_list("pk", flat=True).first() or 0) - (1 if ascending else -1)
        if (first - walk_from if ascending else walk_from - first) <= FAR_IN_IDS:
            return None
    if count == 0:
        return items.none()
    inner, params = items.order_by().annotate(page_id=F("pk")).values("page_id").query.sql_with_params()
    fence = "OFFSET 0" if connection.vendor == "postgresql" else "LIMIT -1 OFFSET 0"
    beyond = ""
    if start is not None:
        beyond = f"WHERE page_id {'>' if ascending else '<'} %s"
        params = (*params, start)
    sql = (
        f"SELECT page_id FROM ({inner} {fence}) AS in_range {beyond}"
        f" ORDER BY page_id {'ASC' if ascending else 'DESC'} LIMIT %s"
    )  # OFFSET 0: planned on its own, by the observed index, not folded into a walk of the id index
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, limit + 1])
        page = [pk for (pk,) in cursor.fetchall()]
    return items.filter(pk__in=page)


def _filtered(scope: ItemListScope, filters: ItemFilters, *, by_id: bool) -> QuerySet[Item]:
    items = Item.objects.filter(dataset=scope.dataset)
    if filters.state:  # item_list_state
        items = items.filter(queue_state=filters.state)
    if filters.predicted_label:  # item_list_predicted
        items = items.filter(predicted_label=scope.labels[filters.predicted_label])
    if filters.min_confidence is not None:  # item_list_confidence
        items = items.filter(predicted_confidence__gte=filters.min_confidence)
    if filters.max_confidence is not None:
        items = items.filter(predicted_confidence__lte=filters.max_confidence)
    if filters.observed_from:  # item_list_observed
        items = items.filter(observed_at__gte=_day_start(filters.observed_from))
    if filters.observed_to:
        items = items.filter(observed_at__lt=_day_start(filters.observed_to + dt.timedelta(days=1)))
    if filters.gold_label:  # gold_label_list: (label, item) in item order
        items = items.filter(gold_label__label=scope.labels[filters.gold_label])
    if filters.disagreement:
        # Awaiting adjudication (item_list_adjudicate) or adjudicated (review_adjudication): both small.
        adjudicated = Review.objects.filter(item=OuterRef("pk"), decision=Review.Decision.ADJUDICATE)
        items = items.filter(Q(queue_state=Item.QueueState.ADJUDICATE) | Exists(adjudicated))
    reviews = _review_conditions(scope, filters)
    if reviews is not None and (by_id or filters.flagged):
        # In id order, the matching reviews' item ids can be read in that order from an index that ends with
        # the item (review_reviewer_item, review_strategy_item, review_flagged), unique-d, each joined to its
        # item: a page costs its rows, however rare the match. As an EXISTS the planner merge-joins instead,
        # walking the dataset's items until it has a page (76 ms at 1M items for the flagged ones). Flagged
        # reviews are few, so in any order their items are read this way and sorted (530 ms as an EXISTS
        # walking the confidence index at 1M items).
        items = items.filter(pk__in=Review.objects.filter(reviews).values("item_id").distinct())
    elif reviews is not None:
        # In another order, walk that order's index and probe each item's reviews: fast when the match is
        # common; a rare match (flagged) in confidence order reads far (see the bench).
        items = items.filter(Exists(Review.objects.filter(reviews, item=OuterRef("pk"))))
    return items


def _row_lookups(scope: ItemListScope) -> dict[str, Subquery]:
    """What a row shows from other tables, each a probe per row (100 at most) rather than a join: a join to
    the gold labels tempted the planner into a merge join that reads them from the first one on, even on a
    page deep in the list (96 ms at 1M items, against 1 ms)."""
    gold = GoldLabel.objects.filter(item=OuterRef("pk"))
    mine = Q(reviewer=scope.user) if scope.own_only else Q()  # a reviewer sees when they last answered
    # MAX, not ORDER BY created_at DESC LIMIT 1: the latter tempted the planner into walking review_created_item
    # backwards for every row (0.07 ms a row at 30k reviews, growing with them); MAX probes the item's few
    # reviews through review_item_reviewer.
    latest = (
        Review.objects.filter(mine, item=OuterRef("pk"))
        .order_by()
        .values("item")
        .annotate(last=Max("created_at"))
        .values("last")
    )
    return {
        "gold_label_id": Subquery(gold.values("label_id")[:1]),
        "gold_origin": Subquery(gold.values("origin")[:1]),
        "last_reviewed_at": Subquery(latest),
    }


def _review_conditions(scope: ItemListScope, filters: ItemFilters) -> Q | None:
    """The conditions one review of the item must meet, or None when no filter is about reviews."""
    conditions = []
    reviewer_id = scope.user.pk if scope.own_only else filters.reviewer_id
    if reviewer_id is not None:  # review_reviewer_item (a range in item order) or review_item_reviewer (probe)
        conditions.append(Q(reviewer_id=reviewer_id))
    if filters.strategy:  # review_strategy_item
        conditions.append(Q(selection_strategy=filters.strategy))
    if filters.flagged:  # review_flagged (partial)
        conditions.append(Q(flagged=True))
    if filters.reviewed_from:  # review_reviewer_created with a reviewer; review_created_item without
        conditions.append(Q(created_at__gte=_day_start(filters.reviewed_from)))
    if filters.reviewed_to:
        conditions.append(Q(created_at__lt=_day_start(filters.reviewed_to + dt.timedelta(days=1))))
    if not conditions:
        return None
    combined = Q()
    for condition in conditions:
        combined &= condition
    return combined


def _walk(
    items: QuerySet[Any], key: str | None, descending: bool, position: tuple | None, backward: bool, limit: int
) -> tuple[list[Any], bool]:
    """Up to `limit` rows from `position` on (or back), and whether there are more beyond them.

    A nullable key is two ranges in this order: the rows with a value by (value, id), then the
    rows without one by id. Each range is one index scan; the second is read only when the
    first runs out on this page, so a page costs one query, two where it crosses over.
    """
    ascending = descending == backward  # the direction this walk reads in
    ranges = [False, True] if key else [False]  # key IS NULL?
    if backward:
        ranges.reverse()
    start = position[0] if position else ranges[0]
    rows: list[Any] = []
    for is_null in ranges[ranges.index(start) :]:
        part = items.filter(**{f"{key}__isnull": is_null}) if key else items
        order_key = None if (key is None or is_null) else key
        if position and is_null == position[0]:
            part = _after(part, order_key, ascending, position[1], position[2])
        sign = "" if ascending else "-"
        ordering = [f"{sign}{order_key}", f"{sign}pk"] if order_key else [f"{sign}pk"]
        rows += list(part.order_by(*ordering)[: limit + 1 - len(rows)])
        if len(rows) > limit:
            break
    more = len(rows) > limit
    rows = rows[:limit]
    if backward:
        rows.reverse()
    return rows, more


def _after(items: QuerySet[Any], key: str | None, ascending: bool, value: Any, pk: int) -> QuerySet[Any]:
    """Rows strictly past (value, pk) in the walk's direction. `key >= value` is the index bound;
    the OR only drops the rows that share the value and come no later by id."""
    beyond, at_or_beyond = ("gt", "gte") if ascending else ("lt", "lte")
    if key is None:
        return items.filter(**{f"pk__{beyond}": pk})
    return items.filter(**{f"{key}__{at_or_beyond}": value}).filter(
        Q(**{f"{key}__{beyond}": value}) | Q(**{key: value, f"pk__{beyond}": pk})
    )


def _cursor(item: Item | ItemRow | ItemApiRow, key: str | None) -> str:
    if key is None:
        return str(item.pk)
    value = getattr(item, key)
    if value is None:
        return f"{_NULL}_{item.pk}"
    text = value.isoformat() if isinstance(value, dt.datetime) else repr(value)
    return f"{text}_{item.pk}"


def _cursor_parse(cursor: str, key: str | None, name: str) -> tuple[bool, Any, int]:
    """(in the no-value range?, value, id) from a cursor made by _cursor for the same sort."""
    problem = ItemSearchInvalid({name: f"“{cursor[:80]}” is not a position in this sort (it came from another?)."})
    text, _, pk_text = cursor.rpartition("_")
    # ASCII digits within the id column's range: isdigit alone accepts "²", which int() refuses.
    if not (pk_text.isascii() and pk_text.isdigit() and int(pk_text) < 2**63) or (key is None) != (
        text == "" and "_" not in cursor
    ):
        raise problem
    pk = int(pk_text)
    if key is None:
        return (False, None, pk)
    if text == _NULL:
        return (True, None, pk)
    try:
        value: Any = float(text) if key == "predicted_confidence" else dt.datetime.fromisoformat(text)
    except ValueError:
        raise problem from None
    if isinstance(value, dt.datetime) and timezone.is_naive(value):
        raise problem
    if isinstance(value, float) and value != value:  # NaN
        raise problem
    return (False, value, pk)


def _day_start(day: dt.date) -> dt.datetime:
    """Midnight at the start of `day` in the site's time zone (TIME_ZONE), as the page shows dates."""
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))
