"""Exact per-dataset item counters without counting items (issue 7, point 3).

Every transaction that moves items records what it changed as rows of
ItemCountDelta, in the same transaction, so the counters are exactly as right as
the items: a rolled-back review rolls back its deltas too. Reading sums a
dataset's rows per key, an index range scan over a few rows, whatever the
number of items. `counts_fold` (a beat task) replaces each key's rows by one,
so that range stays short. No writer ever updates a shared counter row, so
sixteen reviewers answering at once never queue on a counter.

What is counted (the writers: an import's publish, review_submit and review_revise, adjudication_submit,
and label_issues_reopen in models_app, each in the transaction that moves the items):

- `state:open`, `state:done`, `state:holdout`: items by queue state;
- `labelled_at_import`: done items whose gold label came with the file;
- `gold:<label class id>`: gold labels by label;
- `purged:open`, `purged:adjudicate`: items retention purged while they waited (annotations/retention.py,
  in the purge's transaction). They keep their state but no queue serves them again, and the purge
  released their lease so no answer in flight can move them: frozen, so they are counted once and
  subtracted from what is awaiting review (`waiting_count`).

Leases are not counted: they end by time, not by a write (no page needs the figure yet).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from functools import cache

from django.db import connection, transaction
from django.db.models import Count, Sum

from annotations.models import Dataset, GoldLabel, Item, ItemCountDelta
from workflow_site.prepared_sql import prepared_cursor

STATE = "state:"
GOLD = "gold:"
PURGED = "purged:"
LABELLED_AT_IMPORT = "labelled_at_import"
# The states whose items wait for a person: a purged one never will be served (see the module docstring).
WAITING_STATES = (Item.QueueState.OPEN, Item.QueueState.ADJUDICATE)


def waiting_count(counters: dict[str, int], state: str) -> int:
    """Items in `state` that a queue can still serve: the state's counter less those purged in it."""
    return counters.get(STATE + state, 0) - counters.get(PURGED + state, 0)


def counts_add(*, dataset_id: int, deltas: dict[str, int]) -> None:
    """Record changes to a dataset's counters. Precondition: inside the transaction that made them."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("counts_add must run inside the transaction of the change it counts.")
    rows = [(dataset_id, key, delta) for key, delta in deltas.items() if delta]
    if not rows:
        return
    # One fixed statement per number of rows (a review writes two or three), prepared on PostgreSQL
    # (workflow_site/prepared_sql.py): bulk_create's statement building cost more than the insert.
    with prepared_cursor() as cursor:
        cursor.execute(_insert_sql(len(rows)), [value for row in rows for value in row])


@cache
def _insert_sql(n_rows: int) -> str:
    quote = connection.ops.quote_name
    meta = ItemCountDelta._meta
    columns = ", ".join(quote(meta.get_field(name).column) for name in ("dataset", "key", "delta"))
    return f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES " + ", ".join(["(%s, %s, %s)"] * n_rows)


def dataset_counts(*, dataset_ids: Iterable[int]) -> dict[int, dict[str, int]]:
    """Dataset id → {key: count} for every counter, in one query (zero counters are absent)."""
    ids = list(dataset_ids)
    totals: dict[int, dict[str, int]] = {pk: defaultdict(int) for pk in ids}
    rows = (
        ItemCountDelta.objects.filter(dataset_id__in=ids)
        .values("dataset_id", "key")
        .annotate(total=Sum("delta"))
        .order_by()
    )
    for row in rows:
        totals[row["dataset_id"]][row["key"]] = int(row["total"])
    return totals


def counts_fold(*, dataset_id: int) -> int:
    """Replace each key's delta rows of a dataset by one row holding their sum; returns rows removed.

    The sums are taken from exactly the rows this call deleted (DELETE … RETURNING), so
    two folds at once cannot both count the same rows: the second deletes nothing the
    first took. Rows inserted meanwhile by reviews are left for next time; readers see
    the old rows or the new ones, never both (one transaction).
    """
    table = connection.ops.quote_name(ItemCountDelta._meta.db_table)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*), COUNT(DISTINCT key) FROM {table} WHERE dataset_id = %s", [dataset_id])
        rows, keys = cursor.fetchone()
        if rows <= keys:
            return 0  # already one row per key
        cursor.execute(f"DELETE FROM {table} WHERE dataset_id = %s RETURNING key, delta", [dataset_id])
        sums: dict[str, int] = defaultdict(int)
        removed = 0
        for key, delta in cursor.fetchall():
            sums[key] += delta
            removed += 1
        ItemCountDelta.objects.bulk_create(
            [
                ItemCountDelta(dataset_id=dataset_id, key=key, delta=total)
                for key, total in sorted(sums.items())
                if total
            ]
        )
    return removed


def counts_fold_all() -> int:
    """Fold every dataset's counter rows (the beat task)."""
    return sum(counts_fold(dataset_id=pk) for pk in Dataset.objects.values_list("pk", flat=True))


def counts_recount(*, dataset_id: int) -> dict[str, int]:
    """The counters from the items themselves (the slow, obviously right way): for tests and repair."""
    counts: dict[str, int] = defaultdict(int)
    states = Item.objects.filter(dataset_id=dataset_id).values_list("queue_state").annotate(n=Count("id"))
    for state, n in states.order_by():
        counts[STATE + state] = n
    gold = GoldLabel.objects.filter(dataset_id=dataset_id)
    for label_id, n in gold.values_list("label_id").annotate(n=Count("id")).order_by():
        counts[f"{GOLD}{label_id}"] = n
    counts[LABELLED_AT_IMPORT] = gold.filter(
        origin=GoldLabel.Origin.IMPORT, item__queue_state=Item.QueueState.DONE
    ).count()
    purged = Item.objects.filter(dataset_id=dataset_id, purged_at__isnull=False, queue_state__in=WAITING_STATES)
    for state, n in purged.values_list("queue_state").annotate(n=Count("id")).order_by():
        counts[PURGED + state] = n
    return {key: value for key, value in counts.items() if value}


def counts_reset(*, dataset_id: int) -> None:
    """Set a dataset's counters to a recount (after a repair, or for data from before counters)."""
    with transaction.atomic():
        Dataset.objects.select_for_update(no_key=True).get(pk=dataset_id)
        ItemCountDelta.objects.filter(dataset_id=dataset_id).delete()
        counts_add(dataset_id=dataset_id, deltas=counts_recount(dataset_id=dataset_id))
