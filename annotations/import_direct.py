"""Clean files on PostgreSQL: COPY straight into items and gold labels, in one transaction the publish commits.

Why: the staging design (annotations/imports.py) writes every row twice (COPY
into the staging table, then INSERT ... SELECT into items) and, in the publish,
checks every row's foreign keys (about 400,000 lookups for 100,000 rows with
labels). Measured on 100,000 rows x 3 features: of 13.6 s end to end, 8.5 s
were the publish (3.0 s items, 1.2 s gold labels, 4.3 s foreign-key checks),
all of it after the file had been read. Here the writer thread COPYs each
checked chunk into items and gold labels while the reader checks the next,
with the foreign keys checked as each COPY ends (`SET CONSTRAINTS ALL
IMMEDIATE`: the same checks, only earlier) or, where the database role allows
it, once for the batch at the publish (annotations/import_integrity.py). The
publish is then a lock, those checks, the counters, the audit event and the
COMMIT.

What still holds:

- **All or nothing**: every chunk goes into one transaction on the writer's
  own connection, which nobody else sees until the publish commits it; any
  failure, or a file the reader refuses half way, rolls it back.
- **The exact report**: an id repeated in the file or one the dataset already
  has trips the unique (dataset, external_id) index during a COPY; the caller
  then rolls back and imports the file the staging way, whose checks name
  every such line (`DirectRefused`). A bad cell never reaches this writer: the
  reader refuses the fast path first and the exact reader stages as before.
- **Lock order** (README: dataset row, item rows, ..., audit head): the
  foreign-key checks take only KEY SHARE locks on the dataset, batch and label
  rows (they block no review, progress update or publish); the publish locks
  the dataset row, then writes its counters and its audit event last, with no
  check left pending.
- **Bounded memory**: at most two chunks wait for the writer.

The cost: the writer's transaction stays open for the whole import (seconds
for 100,000 rows; about a minute for a 1 GB file), which holds back vacuum's
horizon for that long. Gold labels carry the time their chunk was written,
a moment before the publish commits (the staging publish used the moment it
started, also before its commit).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from annotations.import_integrity import bypass_possible
from annotations.models import GoldLabel, ImportBatch, Item

# A writer that died must not leave the reader waiting on a full queue: it looks again this often.
_POLL_S = 0.1
_UNIQUE_VIOLATION, _DEADLOCK = "23505", "40P01"


class DirectRefused(Exception):
    """The direct COPY met an id clash (or lost a deadlock to an import of the same ids): stage instead."""


class _Abandoned(Exception):
    """The reader gave up on the direct path: roll the writer's transaction back."""


def direct_refusal(exc: BaseException) -> bool:
    """Whether a writer's error means "stage the file and report its ids", not a failed import: a unique
    violation (COPY raises psycopg's own errors, Django's wrap them), a deadlock with another import, or
    a leakage check that found rows across holdout and pool (DirectRefused; import_leakage.py)."""
    if isinstance(exc, DirectRefused):
        return True
    state = getattr(exc, "sqlstate", None) or getattr(exc.__cause__, "sqlstate", None)
    return state in (_UNIQUE_VIOLATION, _DEADLOCK)


class DirectWriter:
    """A thread with its own connection and one open transaction: chunks in, then publish or abandon.

    `write` hands a chunk's staged rows (import_staging.STAGED_COLUMNS order)
    over; `publish` runs the given function inside the transaction and commits;
    `abandon` rolls everything back. Each raises what the writer raised.
    """

    def __init__(self, *, batch: ImportBatch) -> None:
        self.batch = batch
        self.rows_written = 0
        self.labelled = 0
        self.deltas: dict[tuple[str, int | None], int] = {}
        self.longest = 0.0  # the longest chunk's COPY (the staging path's "longest transaction")
        self.seconds: dict[str, float] = {}  # the writer's time per step (reserving ids, items, gold labels)
        self.published: ImportBatch | None = None
        self._sequence: int | None = None
        self.row_triggers_skipped = False
        self._error: BaseException | None = None
        self._queue: queue.Queue[tuple[str, Any] | None] = queue.Queue(maxsize=2)
        self._finished = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"import-{batch.pk}-direct", daemon=True)
        self._thread.start()

    # --- the reader's side ---------------------------------------------------------------------------------

    def write(self, rows: list[list[Any]]) -> None:
        self._put(("rows", rows))

    def run(self, task: Callable[[], Any]) -> Any:
        """Run `task()` in the writer's transaction (it sees the rows written so far), after every chunk
        handed over; returns what it returns, raises what it raises (the transaction then rolls back)."""
        done = threading.Event()
        outcome: list[Any] = []
        self._put(("run", (task, outcome, done)))
        while not done.wait(_POLL_S):
            self._raise_if_failed()
            if self._finished.is_set():
                raise RuntimeError("the import's writer has stopped")
        self._raise_if_failed()
        return outcome[0]

    def publish(self, finish: Callable[[DirectWriter], ImportBatch]) -> ImportBatch:
        """Run `finish(self)` in the writer's transaction after every chunk, then COMMIT; returns its batch."""
        self._put(("publish", finish))
        self._thread.join()
        self._raise_if_failed()
        assert self.published is not None
        return self.published

    def abandon(self) -> None:
        """Roll back whatever was written (idempotent; the writer may have stopped already)."""
        if self._thread.is_alive():
            try:
                self._put(None)
            except BaseException:  # noqa: BLE001 - it failed meanwhile: it rolled back already
                pass
            self._thread.join()

    def _put(self, job: tuple[str, Any] | None) -> None:
        while True:
            self._raise_if_failed()
            if self._finished.is_set():
                raise RuntimeError("the import's writer has stopped")
            try:
                self._queue.put(job, timeout=_POLL_S)
                return
            except queue.Full:
                continue

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    # --- the writer's side ---------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            with transaction.atomic():
                self.row_triggers_skipped = bypass_possible()
                with connection.cursor() as cursor:
                    if self.row_triggers_skipped:  # the publish checks the keys per batch (import_integrity.py)
                        cursor.execute("SET LOCAL session_replication_role = replica")
                    # Otherwise the same checks as at COMMIT, run as each COPY ends, while the reader reads on.
                    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                while (job := self._queue.get()) is not None:
                    kind, payload = job
                    if kind == "rows":
                        self._copy(payload)
                    elif kind == "run":
                        task, outcome, done = payload
                        outcome.append(task())
                        done.set()
                    else:
                        self.published = payload(self)
                        return  # COMMIT
                raise _Abandoned
        except _Abandoned:
            pass
        except BaseException as exc:  # handed to the reader, which raises it
            self._error = exc
        finally:
            self._finished.set()
            connection.close()  # this thread's own connection
            while True:  # a reader blocked on put() gets its room back
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    break

    def _copy(self, rows: list[list[Any]]) -> None:
        """One chunk: reserve its item ids, COPY the items, then the gold labels of its labelled rows."""
        began = time.monotonic()
        batch = self.batch
        q = connection.ops.quote_name
        item, gold = Item._meta, GoldLabel._meta
        now = timezone.now()
        with connection.cursor() as cursor:
            if self._sequence is None:
                # Named once: pg_get_serial_sequence in the SELECT list ran once per row (ten times slower).
                cursor.execute("SELECT pg_get_serial_sequence(%s, %s)::regclass::oid", [item.db_table, item.pk.column])
                self._sequence = cursor.fetchone()[0]
            # One array, not a row per id: fetching 100,000 one-column rows cost more than drawing the ids.
            # Ascending, so that ids follow the file's lines as the staging publish's ORDER BY line made them.
            cursor.execute(
                "SELECT array_agg(n ORDER BY n) FROM (SELECT nextval(%s::oid) AS n FROM generate_series(1, %s)) s",
                [self._sequence, len(rows)],
            )
            ids = cursor.fetchone()[0]
            t_ids = time.monotonic()
            columns = ["id", "dataset", "batch", "external_id", "values", "source_file", "source_row"]
            columns += ["observed_at", "content_hash", "queue_state", "feature_hash"]
            names = ", ".join(q(item.get_field(name).column) for name in columns)
            labelled = []
            with cursor.copy(f"COPY {q(item.db_table)} ({names}) FROM STDIN") as stream:
                for item_id, (_, line, external_id, values, observed, label, state, content_hash, features) in zip(
                    ids, rows, strict=True
                ):
                    stream.write_row(
                        (item_id, batch.dataset_id, batch.pk, external_id, values, batch.file_name, line)
                        + (observed, content_hash, state, features)
                    )
                    key = (state, label)
                    self.deltas[key] = self.deltas.get(key, 0) + 1
                    if label is not None:
                        labelled.append((item_id, batch.dataset_id, label, GoldLabel.Origin.IMPORT, now))
            t_items = time.monotonic()
            if labelled:
                gold_names = ", ".join(
                    q(gold.get_field(name).column) for name in ("item", "dataset", "label", "origin", "updated_at")
                )
                with cursor.copy(f"COPY {q(gold.db_table)} ({gold_names}) FROM STDIN") as stream:
                    for row in labelled:
                        stream.write_row(row)
        end = time.monotonic()
        for step, seconds in (("ids", t_ids - began), ("items", t_items - t_ids), ("gold_labels", end - t_items)):
            self.seconds[step] = self.seconds.get(step, 0.0) + seconds
        self.rows_written += len(rows)
        self.labelled += len(labelled)
        self.longest = max(self.longest, time.monotonic() - began)
