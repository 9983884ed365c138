"""Fresh planner statistics for a large import, inside the import's own transaction (PostgreSQL).

Why. The direct writer (annotations/import_direct.py) COPYs a whole file into
the items table in one transaction and then, in that same transaction, asks
set-based questions about those rows (the leakage checks, the recheck at the
publish). PostgreSQL plans them with the statistics of the last ANALYZE, which
knew nothing of rows that are not even committed yet: for a new dataset it
believes the dataset holds one item. A million-row file into a new dataset
(found by bench/side_by_side.py --file-import 1000000) then had its per-hash
leakage probe planned as a walk of the dataset's observed-time index, "cheap"
for one row, filtering each of the million for the hash: a million rows per
distinct hash, which did not finish in ten minutes. With statistics that count
the new rows the same probe reads the feature-hash index (a few seconds).

What. After the last chunk is written and before those questions, the planner
is asked how many items it believes the dataset holds; when the batch alone is
more than twice that (so the belief is off by more than half), the items table
is analysed on the columns those queries filter by (through the table owner's
function, migration 0029: under least privilege the application may not ANALYZE). ANALYZE in a transaction
samples the transaction's own uncommitted rows, and the statistics it writes
commit or roll back with the import. Cost on a 1M-row table: about 0.3 s (0.8 s
for every column), once per import that needs it: the first sizeable import of
a dataset, or one larger than the dataset was.

Concurrency. ANALYZE takes a SHARE UPDATE EXCLUSIVE lock on the items table
until the import commits; reads and writes (reviews, other imports' COPY) do not
conflict with it, but a second import's ANALYZE, VACUUM and CREATE INDEX
CONCURRENTLY do. So the lock is waited for at most LOCK_WAIT; past that the
refresh is skipped and logged (that import then plans as before), rather than
one import waiting out another's minute-long transaction.
"""

from __future__ import annotations

import json
import logging

from django.db import OperationalError, connection, transaction

from annotations.models import Item

logger = logging.getLogger(__name__)

# Below this many rows a misplanned probe costs little (rows x rows at most); an ANALYZE costs 0.3 s.
MIN_ROWS = 1_000
LOCK_WAIT = "1s"


def planner_item_estimate(dataset_id: int) -> float:
    """How many items of the dataset the planner believes there are (its row estimate; PostgreSQL)."""
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) SELECT 1 FROM {Item._meta.db_table} WHERE dataset_id = %s", [dataset_id])
        (plan,) = cursor.fetchone()
    if isinstance(plan, str):
        plan = json.loads(plan)
    return float(plan[0]["Plan"]["Plan Rows"])


def item_statistics_refresh(*, dataset_id: int, rows_written: int) -> bool:
    """ANALYZE the items table when this transaction's `rows_written` new items of the dataset are more than
    twice what the planner believes it holds; True when it did.

    Precondition: inside the transaction that wrote the rows (they are sampled as its own). Does nothing
    on SQLite, for fewer than MIN_ROWS rows, or when another transaction holds the table's ANALYZE lock
    longer than LOCK_WAIT.
    """
    if connection.vendor != "postgresql" or rows_written < MIN_ROWS:
        return False
    if planner_item_estimate(dataset_id) * 2 >= rows_written:
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('lock_timeout')")
        (previous,) = cursor.fetchone()
        try:
            with transaction.atomic():  # a savepoint: a lock timeout rolls back only the ANALYZE
                cursor.execute("SELECT set_config('lock_timeout', %s, true)", [LOCK_WAIT])
                # The owner's function (migration 0029): only a table's owner may ANALYZE it, and under
                # least privilege the application is not.
                cursor.execute("SELECT loupe_items_analyze()")
        except OperationalError as exc:
            logger.warning(
                "Dataset %s: items not analysed after an import of %s rows (%s).", dataset_id, rows_written, exc
            )
            return False
        finally:
            # set_config(..., true) lasts to the end of the transaction, not of the savepoint.
            cursor.execute("SELECT set_config('lock_timeout', %s, true)", [previous])
    if planner_item_estimate(dataset_id) * 2 < rows_written:  # PostgreSQL skips, with a warning, what it may not do
        logger.warning("Dataset %s: ANALYZE of the items left the statistics as they were.", dataset_id)
        return False
    return True
