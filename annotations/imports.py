"""Imports: the upload is stored, and a worker validates, stages and publishes it.

Why not in the request: a 200,000-row file outlasted gunicorn's timeout (the
analyst got a 500 and no report), and on SQLite one long import transaction
held the database's single write lock past the busy timeout, so other users'
reviews and logins failed with "database is locked" (issue 6, defect 3).

The shape, each step its own short transaction:

1. **Upload** (the request, `import_batch_upload`): the file is streamed to
   LOUPE_UPLOAD_DIR while its sha256 is computed; a QUEUED ImportBatch and its
   `import.queued` event are committed, and the task is sent after commit. A
   broker that is down leaves the batch queued; the beat sweep sends it later.
2. **Claim** (`import_batch_claim`): queued → validating with a conditional
   UPDATE, so a task delivered twice imports once.
3. **Check and stage** (`_check_and_stage`): the file is read a chunk at a
   time (annotations/import_reading.py: pyarrow for clean files, the csv
   module whenever something is off, so a bad file gets its report line by
   line), each chunk checked column-wise (annotations/import_validation.py)
   and, while the file is clean, written to ImportStagedRow with COPY
   (annotations/import_staging.py), each chunk a short transaction that also
   moves the progress bar and the heartbeat and checks this attempt still
   owns the batch. Memory is bounded by a chunk, not by the file. Then SQL
   over the staged rows finds ids repeated in the file and ids the dataset
   already has. A bad file ends REJECTED with the row-level report and
   `import.rejected`; its staged rows are removed.
4. **Publish** (`import_batch_publish`), one short transaction: the dataset row
   is locked (README, lock order: dataset row first, audit head last) and the
   staged rows become items and gold labels with set-based INSERT ... SELECT.
   An id another import published since step 3 trips the unique id
   constraint, the whole transaction rolls back, and the batch is rejected
   with a report of the clashing rows (looked up after the rollback, outside
   the lock). All or nothing; nothing row by row while the lock is held.
   **On PostgreSQL a clean file skips the staging table** (annotations/import_direct.py):
   a writer thread COPYs each checked chunk straight into items and gold labels
   in one transaction of its own, which the publish (the same lock, counters
   and audit event) then commits; an id clash rolls it back and the file takes
   the staging path above for its report. Where the database role allows it,
   the rows' foreign keys are checked once per batch instead of once per row
   (annotations/import_integrity.py), on both paths.
5. **Clean up**: staged rows are deleted (one statement on PostgreSQL, where the
   staging table is unlogged; in chunks on SQLite), the stored file removed.

A worker that dies stops the heartbeat; `import_batches_sweep`
(annotations/import_lifecycle.py, with the claims and clean-up) queues the batch
again (LOUPE_IMPORT_MAX_ATTEMPTS attempts in all) or fails it, and removes its
staged rows.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import queue
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from annotations.counters import GOLD, LABELLED_AT_IMPORT, STATE, counts_add
from annotations.import_direct import DirectRefused, DirectWriter, direct_refusal
from annotations.import_formats import (
    Converted,
    ImportFormatError,
    detect_format,
    format_error_result,
    jsonl_to_csv,
    parquet_to_csv,
    report_in_source_terms,
)
from annotations.import_integrity import bypass_possible, references_check
from annotations.import_leakage import (
    FileDuplicates,
    ImportWarnings,
    NearDuplicates,
    cross_set_exists,
    leakage_check,
)
from annotations.import_lifecycle import (
    Superseded,
    batch_cleanup,
    batch_heartbeat,
    batch_progress,
    batch_transition,
    import_batch_claim,
    import_batch_dispatch,
    import_batch_fail,
    staged_rows_delete,
    upload_path,
)
from annotations.import_reading import (
    FastPathRefused,
    OpenStream,
    exact_chunks,
    fast_chunks,
    read_header,
    scan_file,
)
from annotations.import_staging import staged_clashes, staged_duplicates, staged_rows, staged_rows_write
from annotations.import_statistics import item_statistics_refresh
from annotations.import_validation import CheckedChunk, FeatureRule, ParseResult, check_chunk, check_header
from annotations.label_studio import LabelStudioFormatError, tasks_to_csv
from annotations.models import Dataset, GoldLabel, ImportBatch, ImportStagedRow, Item
from annotations.signals import items_imported, send_after_commit
from governance.audit import audit_record
from workflow_site.csv_safety import neutralise_formula
from workflow_site.deferred_checks import deferred_checks_run_now
from workflow_site.row_triggers import row_triggers_restored, row_triggers_skipped

logger = logging.getLogger(__name__)

# Rows per staging transaction: on SQLite each chunk holds the write lock for a
# fraction of a second (bench/import_while_reviewing.py), so a reviewer's write waits at most that long.
STAGE_CHUNK_ROWS = settings.LOUPE_IMPORT_STAGE_CHUNK_ROWS
# Clean files on PostgreSQL go straight into items (annotations/import_direct.py); tests switch it off
# to drive the staging path.
DIRECT_WRITES = True
# Enough of the file to tell its format by its first characters.
_SNIFF_BYTES = 64 * 1024
_FORMAT_NAMES = {"jsonl": "JSON Lines", "parquet": "Parquet", "labelstudio": "Label Studio JSON"}


class ImportRejected(Exception):
    """The file failed validation; no rows were written.

    `result` holds the row-level report; `batch` is the rejected ImportBatch that
    records the attempt (None only where no record could be written).
    """

    def __init__(self, result: ParseResult, batch: ImportBatch | None = None) -> None:
        super().__init__(f"{result.error_count} problem(s) in the file")
        self.result = result
        self.batch = batch


def item_content_hash(
    *, external_id: str, values: dict[str, Any], observed_at: datetime | None, label: str | None
) -> str:
    payload = {
        "external_id": external_id,
        "values": values,
        # UTC, as stored: the hash can be recomputed from the database row.
        "observed_at": observed_at.astimezone(UTC).isoformat() if observed_at else None,
        "label": label,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


# --- 1. Upload ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredUpload:
    """A file written under LOUPE_UPLOAD_DIR: its name there, sha256 and size."""

    name: str
    sha256: str
    size: int


def upload_store(*, chunks: Iterable[bytes]) -> StoredUpload:
    """Write the chunks to a new file under LOUPE_UPLOAD_DIR, hashing as they go (bounded memory)."""
    folder = Path(settings.LOUPE_UPLOAD_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{uuid.uuid4().hex}.upload"
    digest, size = hashlib.sha256(), 0
    # "x": a new file, never someone else's; 0o600 via umask-independent chmod below.
    with open(folder / name, "xb") as out:
        for chunk in chunks:
            digest.update(chunk)
            size += len(chunk)
            out.write(chunk)
    (folder / name).chmod(0o600)
    return StoredUpload(name=name, sha256=digest.hexdigest(), size=size)


def import_batch_upload(
    *,
    dataset: Dataset,
    user: AbstractBaseUser,
    file_name: str,
    chunks: Iterable[bytes],
    purpose: str,
    dispatch: bool = True,
) -> ImportBatch:
    """Store the upload and queue its import: a QUEUED batch and `import.queued`, the task sent after commit.

    Precondition: the caller checked the user may import into the dataset and the
    size cap. A purpose that is not one of ImportBatch.Purpose is the caller's
    mistake: ValidationError, nothing stored or recorded. `dispatch=False` is
    for a caller that processes the batch itself (import_batch_create).
    """
    if purpose not in ImportBatch.Purpose.values:
        raise ValidationError({"purpose": f"Unknown purpose {purpose!r}."})
    stored = upload_store(chunks=chunks)
    try:
        with transaction.atomic():
            batch = ImportBatch.objects.create(
                dataset=dataset,
                uploaded_by=user,
                file_name=file_name[:255],
                file_sha256=stored.sha256,
                file_size=stored.size,
                purpose=purpose,
                status=ImportBatch.Status.QUEUED,
                stored_file=stored.name,
                stage="Waiting for a worker",
            )
            audit_record(
                actor=user,
                action="import.queued",
                obj=batch,
                object_type="import_batch",
                dataset_id=dataset.pk,
                after={
                    "status": "queued",
                    "file_name": batch.file_name,
                    "file_sha256": batch.file_sha256,
                    "file_size": batch.file_size,
                    "purpose": purpose,
                },
            )
            if dispatch:
                transaction.on_commit(lambda: import_batch_dispatch(batch_id=batch.pk))
    except BaseException:
        (Path(settings.LOUPE_UPLOAD_DIR) / stored.name).unlink(missing_ok=True)
        raise
    return batch


# --- 2-6. The worker's part ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportOutcome:
    """How a processed batch ended; `result` holds the report of a rejected one."""

    batch: ImportBatch
    result: ParseResult | None = None


def import_batch_process(*, batch_id: int) -> ImportOutcome | None:
    """Claim a queued batch and take it to imported, rejected or failed. None if not claimed (or superseded).

    Safe to run twice: only the delivery that claims the batch does anything.
    An unexpected error fails the batch with its reason (logged) and returns the outcome.
    """
    batch = import_batch_claim(batch_id=batch_id)
    if batch is None:
        logger.info("Import batch %s was not queued (already claimed or gone); nothing to do.", batch_id)
        return None
    try:
        direct = _direct_possible()
        if direct:
            try:
                with batch_heartbeat(batch):
                    result, timings, writer = _check_and_write(batch, direct=True)
                if writer is not None:
                    return _publish_direct(batch, writer, timings, result.warnings)
            except DirectRefused as why:
                # An id repeated in the file or already in the dataset: the staging path names each line.
                logger.info("Import batch %s: staging it to report its ids (%s).", batch.pk, why)
                direct = False
        if not direct:
            with batch_heartbeat(batch):
                result, timings = _check_and_stage(batch)
        if not result.ok:
            return ImportOutcome(_reject(batch, result, from_status=_current_status(batch)), result)
        return import_batch_publish(batch=batch, timings=timings, warnings=result.warnings)
    except Superseded:
        logger.warning("Import batch %s: a later attempt owns the batch; this attempt stops.", batch_id)
        return None
    except Exception as exc:  # any other failure ends the batch as failed, with its reason
        logger.exception("Import batch %s failed", batch_id)
        failed = import_batch_fail(batch=batch, error=f"{type(exc).__name__}: {exc}")
        return ImportOutcome(failed) if failed is not None else None


def _current_status(batch: ImportBatch) -> str:
    return ImportBatch.objects.filter(pk=batch.pk).values_list("status", flat=True).first() or batch.status


@dataclass
class _Source:
    """The file to read as CSV, and how a CSV line maps back to the file's own line or row."""

    open_stream: OpenStream
    converted: Converted | None

    def line_in_source(self, line: int) -> int:
        return (self.converted.line_in_source(line) or line) if self.converted else line

    def report(self, result: ParseResult) -> ParseResult:
        """A report made in CSV lines, in the file's own terms."""
        return report_in_source_terms(result, self.converted) if self.converted else result


def _source(batch: ImportBatch) -> _Source | ParseResult:
    """The stored upload as CSV (JSON Lines, Parquet and Label Studio JSON converted), or the format's error."""
    path = upload_path(batch)
    if not batch.stored_file or not path.exists():
        raise FileNotFoundError("the stored upload is missing, so it cannot be read; upload the file again")
    with path.open("rb") as stream:
        head = stream.read(_SNIFF_BYTES)
    file_format = detect_format(batch.file_name, head)
    if file_format == "csv":
        return _Source(open_stream=lambda: path.open("rb"), converted=None)
    # Every other format becomes the CSV an analyst would upload: the same checks, the same
    # report (annotations/import_formats.py). These are converted whole, in memory, hence their cap.
    size, limit = path.stat().st_size, settings.IMPORT_CONVERTED_MAX_BYTES
    if size > limit:
        return format_error_result(
            ImportFormatError(
                f"The file is {size:,} bytes; {_FORMAT_NAMES[file_format]} files are converted in memory and "
                f"can be at most {limit:,} bytes. Upload it as CSV (up to {settings.IMPORT_MAX_BYTES:,} bytes), "
                "or split it."
            )
        )
    data = path.read_bytes()
    try:
        if file_format == "labelstudio":
            feature_names = list(batch.dataset.features.order_by("position").values_list("name", flat=True))
            csv_data, converted = tasks_to_csv(data, feature_names), None
        else:
            converted = jsonl_to_csv(data) if file_format == "jsonl" else parquet_to_csv(data)
            csv_data = converted.csv
    except (ImportFormatError, LabelStudioFormatError) as exc:
        return format_error_result(exc if isinstance(exc, ImportFormatError) else ImportFormatError(str(exc)))
    return _Source(open_stream=lambda: io.BytesIO(csv_data), converted=converted)


def _check_and_stage(batch: ImportBatch) -> tuple[ParseResult, dict[str, float]]:
    """Read, check and stage the file (the staging path of `_check_and_write`): its report and timings."""
    result, timings, _ = _check_and_write(batch, direct=False)
    return result, timings


def _check_and_write(batch: ImportBatch, *, direct: bool) -> tuple[ParseResult, dict[str, float], DirectWriter | None]:
    """Read the file in chunks, check each, stage it while the file is still clean; then the set-based checks.

    Clean files take the fast reader (annotations/import_reading.py) and are
    staged as they are read. At the first surprise the staged rows are dropped
    and the exact reader goes over the file again, staging only while no
    problem has been found, so that a bad file gets its full line-by-line
    report. Then SQL over the staged rows finds ids repeated in the file and
    ids the dataset already has. Returns the report (rows_total set) and the
    seconds each step took.

    `direct` (PostgreSQL, outside a transaction): the fast reader's chunks go
    straight into items instead (annotations/import_direct.py), and a clean
    file comes back with its DirectWriter, ready to publish; DirectRefused when
    an id clashes (the caller stages the file again for the report).
    """
    started = time.monotonic()
    source = _source(batch)
    if isinstance(source, ParseResult):
        return source, {}, None
    dataset = batch.dataset
    rules = [FeatureRule(f.name, f.dtype, tuple(f.categories or ())) for f in dataset.features.order_by("position")]
    label_ids = dict(dataset.label_classes.values_list("name", "pk"))
    require_label = batch.purpose == ImportBatch.Purpose.HOLDOUT
    result = ParseResult()
    scan = scan_file(source.open_stream, result)
    header = read_header(source.open_stream, result) if scan is not None else None
    if scan is None or header is None or not check_header(header, rules, require_label, result):
        return source.report(result), {}, None
    batch_progress(
        batch,
        status=ImportBatch.Status.STAGING,
        stage="Checking and staging rows",
        rows_total=scan.data_lines,
        rows_done=0,
    )
    staged_rows_delete(batch.pk)  # what an earlier attempt of this batch left
    stager = _Stager(batch=batch, rules=rules, label_ids=label_ids, source=source, direct=direct)

    def check(frame: pd.DataFrame, first_seen: dict[str, int] | None) -> CheckedChunk:
        return check_chunk(
            frame,
            features=rules,
            label_names=list(label_ids),
            require_label=require_label,
            result=result,
            first_seen=first_seen,
        )

    try:
        try:
            rows = 0
            for frame in fast_chunks(source.open_stream, header):
                for start in range(0, len(frame), STAGE_CHUNK_ROWS):
                    checked = check(frame.iloc[start : start + STAGE_CHUNK_ROWS], None)
                    if not result.ok:
                        raise FastPathRefused("a cell is bad")
                    stager.stage(checked)
                rows += len(frame)
            if rows != scan.data_lines:
                raise FastPathRefused(f"{rows} rows on {scan.data_lines} lines: blank lines or rows across lines")
            result.rows_total = rows
            reader = "fast"
        except FastPathRefused as why:
            # Anything unusual: the exact reader, from the start, for a report that names every line.
            logger.info("Import batch %s: reading it line by line (%s).", batch.pk, why)
            stager.to_staging()
            stager.flush()
            staged_rows_delete(batch.pk)
            result, stager.rows_done, reader = ParseResult(), 0, "exact"
            stager.near.reset()
            stager.in_file.reset()
            first_seen: dict[str, int] = {}
            for frame in exact_chunks(source.open_stream, header, result, chunk_rows=STAGE_CHUNK_ROWS):
                checked = check(frame, first_seen)
                if result.ok:
                    stager.stage(checked)
            result = source.report(result)
        stager.flush()
        if result.ok and result.rows_total == 0:
            result.add(None if source.converted else 2, "", "", "The file has a header but no data rows.")
        writer = stager.hand_over() if result.ok else None
    finally:
        stager.close()
    read = time.monotonic()
    timings = {
        "read_check_stage": round(read - started, 3),
        "near_duplicates": round(stager.near.seconds, 3),  # part of read_check_stage
        "stage_longest_transaction": round(stager.longest, 3),
        "reader": reader,  # type: ignore[dict-item]
    }
    batch.rows_total = result.rows_total
    if writer is not None:  # the unique (dataset, external_id) index checked the ids as the rows went in
        # Holdout and pool compared by feature hash, over the rows in the writer's transaction; a leak
        # sends the file down the staging path, whose report names every line (as an id clash does).
        leaks = ParseResult(rows_total=result.rows_total)

        def check() -> float:  # in the writer's transaction, once its last chunk is in
            began = time.monotonic()
            # Statistics that count the rows just written, before the queries about them are planned.
            if item_statistics_refresh(dataset_id=batch.dataset_id, rows_written=result.rows_total):
                timings["statistics"] = round(time.monotonic() - began, 3)
                began = time.monotonic()
            leakage_check(source="items", batch=batch, result=leaks, warnings=stager.warnings, in_file=stager.in_file)
            return time.monotonic() - began

        try:
            timings["leakage_checks"] = round(writer.run(check), 3)
        except Exception as exc:  # the writer's last chunks may have met an id clash: stage for the report
            writer.abandon()
            if direct_refusal(exc):
                raise DirectRefused(str(exc)) from exc
            raise
        if not leaks.ok:
            writer.abandon()
            raise DirectRefused(f"{leaks.error_count} row(s) with the feature values of the other set")
        result.warnings = stager.warnings.as_report()
        batch_progress(batch, stage="Written; waiting to publish", rows_total=result.rows_total)
        return result, {**timings, "writer": "direct"}, writer  # type: ignore[dict-item]
    if result.ok:
        batch_progress(batch, stage="Checking the ids against the file and the dataset")
        staged_duplicates(batch_id=batch.pk, result=result)
    if result.ok:
        staged_clashes(batch_id=batch.pk, dataset_id=batch.dataset_id, result=result)
    if result.ok:
        began = time.monotonic()
        leakage_check(source="staged", batch=batch, result=result, warnings=stager.warnings, in_file=stager.in_file)
        result.warnings = stager.warnings.as_report()
        timings["leakage_checks"] = round(time.monotonic() - began, 3)
    if result.ok:
        batch_progress(batch, stage="Staged; waiting to publish", rows_total=result.rows_total)
    return result, {**timings, "id_checks": round(time.monotonic() - read, 3)}, None


class _Stager:
    """Writes checked chunks into the staging table, each in its own short transaction.

    On PostgreSQL the writes run in a thread of their own, on its own
    connection, one chunk behind: while the database parses a chunk's COPY,
    this thread reads and checks the next (the two together were about 55% and
    45% of the time; one after the other they added up). At most two chunks
    wait, so memory stays bounded. Inside an outer transaction (tests) the
    thread could not see the batch row, so the writes stay in this thread.
    """

    def __init__(
        self,
        *,
        batch: ImportBatch,
        rules: list[FeatureRule],
        label_ids: dict[str, int],
        source: _Source,
        direct: bool = False,
    ):
        self.batch, self.rules, self.label_ids, self.source = batch, rules, label_ids, source
        self.holdout = batch.purpose == ImportBatch.Purpose.HOLDOUT
        self.rows_done = 0
        self.longest = 0.0
        self.warnings = ImportWarnings()
        self.near = NearDuplicates(batch=batch, rules=rules, warnings=self.warnings)
        self.in_file = FileDuplicates()
        observed_field = ImportStagedRow._meta.get_field("observed_at")
        # Most files have no observed_at column: a None needs no conversion (and 100,000 calls cost a second).
        self.prepare_moment = lambda moment: (
            None if moment is None else observed_field.get_db_prep_save(moment, connection)
        )
        self._queue: queue.Queue[tuple[list[list[Any]], int] | None] | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self.direct = DirectWriter(batch=batch) if direct else None
        if self.direct is None:
            self._start_writer()

    def _start_writer(self) -> None:
        if connection.vendor == "postgresql" and not connection.in_atomic_block:
            self._queue = queue.Queue(maxsize=2)
            self._thread = threading.Thread(
                target=self._write_in_turn, name=f"import-{self.batch.pk}-stage", daemon=True
            )
            self._thread.start()

    def to_staging(self) -> None:
        """Drop the direct writer's rows (a rollback) and stage from here on (the exact reader's path)."""
        if self.direct is not None:
            self.direct.abandon()
            self.direct = None
            self._start_writer()

    def hand_over(self) -> DirectWriter | None:
        """The direct writer, now holding every row, for the caller to publish (None when staging)."""
        writer, self.direct = self.direct, None
        return writer

    def stage(self, checked: CheckedChunk) -> None:
        # The rows' parameters (JSON, hashes, dates) are prepared before the transaction starts,
        # so the transaction (SQLite's write lock) holds only the write itself.
        rows = staged_rows(
            checked,
            batch_id=self.batch.pk,
            features=self.rules,
            label_ids=self.label_ids,
            holdout=self.holdout,
            line_in_source=self.source.line_in_source,
            prepare_moment=self.prepare_moment,
        )
        self.rows_done += len(rows)
        self.near.see(checked, self.source.line_in_source)
        self.in_file.see([row[1] for row in rows], [row[-1] for row in rows])
        if self.direct is not None:
            try:
                self.direct.write(rows)
            except Exception as exc:
                if direct_refusal(exc):
                    raise DirectRefused(str(exc)) from exc
                raise
            self.longest = self.direct.longest
            _written_directly(self.batch, self.rows_done)
            return
        if self._queue is None:
            self.longest = max(self.longest, _stage_chunk(self.batch, rows, self.rows_done))
            return
        self._raise_if_failed()
        self._queue.put((rows, self.rows_done))

    def flush(self) -> None:
        """Wait until every chunk handed over is written; raise what the writer raised."""
        if self._queue is not None:
            self._queue.join()
        self._raise_if_failed()

    def close(self) -> None:
        """Stop the writer thread (after what it holds), whatever happened; roll back an unpublished direct writer."""
        if self.direct is not None:
            self.direct.abandon()
            self.direct = None
        if self._queue is not None and self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._queue = None

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    def _write_in_turn(self) -> None:
        assert self._queue is not None
        try:
            while (job := self._queue.get()) is not None:
                try:
                    if self._error is None:  # after a failure, drain without writing
                        self.longest = max(self.longest, _stage_chunk(self.batch, *job))
                except BaseException as exc:  # handed to the reading thread, which raises it
                    self._error = exc
                finally:
                    self._queue.task_done()
            self._queue.task_done()
        finally:
            connection.close()  # this thread's own connection


def _written_directly(batch: ImportBatch, rows_done: int) -> None:
    """The progress bar (and the ownership check) after a chunk went to the direct writer, in its own
    short transaction: the rows themselves wait, unseen, in the writer's."""
    batch_progress(batch, rows_done=rows_done)


def _stage_chunk(batch: ImportBatch, rows: list[list[Any]], rows_done: int) -> float:
    """One chunk in one transaction, with the ownership check and the progress bar; returns its seconds.

    The check and the rows share the transaction: a batch the sweep took back
    gets no rows from its lost attempt.
    """
    began = time.monotonic()
    with transaction.atomic():
        batch_progress(batch, rows_done=rows_done)
        staged_rows_write(rows)
    return time.monotonic() - began


class _LeakedMeanwhile(Exception):
    """Under the dataset lock, a row of the batch matched an item another import put in the other set."""


def import_batch_publish(
    *, batch: ImportBatch, timings: dict[str, float] | None = None, warnings: dict[str, Any] | None = None
) -> ImportOutcome:
    """Publish a staged batch in one short transaction: all its rows become items (and gold labels), or none.

    Precondition: this attempt staged every row (`_stage`). Locks the dataset
    row first, so imports into one dataset publish one at a time. The ids were
    checked at validation; one that another import published since then is
    caught by the unique (dataset, external_id) constraint, which rolls the
    whole INSERT back: the clashing rows are then looked up outside the lock and
    the batch is rejected with a row-level report. Nothing is checked row by
    row while the lock is held, except one set-based query when the dataset
    has items in the other set: whether any row's feature values reached that
    set since the leakage check (annotations/import_leakage.py), which rejects
    the batch with the lines named. `warnings` go into the batch's report.
    Side effect, after commit: `items_imported`.
    """
    batch_progress(batch, status=ImportBatch.Status.PUBLISHING, stage="Publishing")
    try:
        try:
            started = time.monotonic()
            with transaction.atomic():
                Dataset.objects.select_for_update(no_key=True).get(pk=batch.dataset_id)
                if cross_set_exists(source="staged", batch=batch):
                    raise _LeakedMeanwhile
                published = _publish_rows(batch, {**(timings or {}), "publish": 0.0}, started, warnings)
        except _LeakedMeanwhile:
            leaks = ParseResult(rows_total=batch.rows_total)
            leakage_check(source="staged", batch=batch, result=leaks, warnings=ImportWarnings())
            logger.info("Import batch %s: %s rows reached the other set meanwhile.", batch.pk, leaks.error_count)
            return ImportOutcome(_reject(batch, leaks, from_status=ImportBatch.Status.PUBLISHING, cleanup=False), leaks)
        except IntegrityError:
            clashes = ParseResult(rows_total=batch.rows_total)
            staged_clashes(batch_id=batch.pk, dataset_id=batch.dataset_id, result=clashes)
            if clashes.ok:
                raise  # not an id clash: the batch fails with this error
            logger.info(
                "Import batch %s: %s ids were published by another import meanwhile.", batch.pk, clashes.error_count
            )
            return ImportOutcome(
                _reject(batch, clashes, from_status=ImportBatch.Status.PUBLISHING, cleanup=False), clashes
            )
        _statistics_refresh(published.rows_imported)
        return ImportOutcome(published)
    finally:
        batch_cleanup(batch)


def _direct_possible() -> bool:
    """Whether this worker can write a clean file straight into items (import_direct.py): PostgreSQL, and
    no outer transaction (tests), which the writer's own connection could not see into."""
    return DIRECT_WRITES and connection.vendor == "postgresql" and not connection.in_atomic_block


def _publish_direct(
    batch: ImportBatch, writer: DirectWriter, timings: dict[str, float], warnings: dict[str, Any]
) -> ImportOutcome:
    """Publish what the direct writer holds: lock the dataset row, count, audit, COMMIT (all in its transaction).

    The rows and their foreign keys went in (and were checked) while the file
    was read, so nothing is done row by row here. DirectRefused (the caller
    stages the file again) when the writer met an id clash on its last chunks.
    """
    batch_progress(batch, status=ImportBatch.Status.PUBLISHING, stage="Publishing")

    def finish(held: DirectWriter) -> ImportBatch:
        started = time.monotonic()
        Dataset.objects.select_for_update(no_key=True).get(pk=batch.dataset_id)
        if cross_set_exists(source="items", batch=batch):  # another import filled the other set meanwhile
            raise DirectRefused("rows with the feature values of the other set, published meanwhile")
        if held.row_triggers_skipped:  # the foreign keys, checked per batch (import_integrity.py)
            row_triggers_restored()
            references_check(
                dataset_id=batch.dataset_id, batch_id=batch.pk, label_ids=[label for _, label in held.deltas if label]
            )
        counts_add(
            dataset_id=batch.dataset_id,
            deltas=_publish_count_deltas([(state, label, rows) for (state, label), rows in held.deltas.items()]),
        )
        return _publish_finish(
            batch,
            {
                **timings,
                "stage_longest_transaction": round(held.longest, 3),
                **{f"write_{step}": round(seconds, 3) for step, seconds in held.seconds.items()},
                "publish": 0.0,
            },
            started,
            rows_imported=held.rows_written,
            labelled_rows=held.labelled,
            now=timezone.now(),
            warnings=warnings,
        )

    try:
        published = writer.publish(finish)
    except Exception as exc:
        if direct_refusal(exc):
            raise DirectRefused(str(exc)) from exc  # the stored file stays, for the staging path
        batch_cleanup(batch)
        raise
    finally:
        writer.abandon()  # nothing to do once it has committed
    batch_cleanup(batch)
    _statistics_refresh(published.rows_imported)
    return ImportOutcome(published)


# A publish that adds at least this many rows refreshes the planner's statistics at once.
_ANALYZE_AFTER_ROWS = 10_000


def _statistics_refresh(rows_imported: int) -> None:
    """ANALYZE the tables a large publish grew (PostgreSQL), so the next queries are planned for their size.

    Autovacuum would do it within a minute or so; until then the item list was
    planned for the table as it was before (measured: 95 ms per page with the
    statistics of an empty table, 1.1 ms after ANALYZE, at 100,000 items).
    ANALYZE samples a fixed number of rows and blocks no reads or writes.
    """
    if connection.vendor != "postgresql" or rows_imported < _ANALYZE_AFTER_ROWS:
        return
    q = connection.ops.quote_name
    with connection.cursor() as cursor:
        for model in (Item, GoldLabel):
            cursor.execute(f"ANALYZE {q(model._meta.db_table)}")


def _publish_rows(
    batch: ImportBatch, timings: dict[str, float], started: float, warnings: dict[str, Any] | None = None
) -> ImportBatch:
    """INSERT ... SELECT the staged rows into items and gold labels, mark the batch imported, audit it.

    Set-based (two statements, whatever the number of rows), so the dataset
    lock and SQLite's write lock are held for as short a time as the database
    can copy the rows. Raises Superseded (rolling back) if the sweep took the batch back.
    `timings` (seconds per step, for the report) gets the publish's own, from `started`.
    """
    q = connection.ops.quote_name
    item, staged, gold = Item._meta, ImportStagedRow._meta, GoldLabel._meta

    def col(meta: Any, name: str) -> str:
        return q(meta.get_field(name).column)

    now = timezone.now()
    skip_row_triggers = bypass_possible()  # the foreign keys checked per batch below (import_integrity.py)
    with row_triggers_skipped(skip_row_triggers), connection.cursor() as cursor:
        item_columns = ["dataset", "batch", "external_id", "values", "source_file", "source_row"]
        item_columns += ["observed_at", "content_hash", "queue_state", "feature_hash"]
        cursor.execute(
            f"INSERT INTO {q(item.db_table)} ({', '.join(col(item, c) for c in item_columns)}) "
            f"SELECT %s, %s, s.{col(staged, 'external_id')}, s.{col(staged, 'values')}, %s, s.{col(staged, 'line')}, "
            f"s.{col(staged, 'observed_at')}, s.{col(staged, 'content_hash')}, s.{col(staged, 'queue_state')}, "
            f"s.{col(staged, 'feature_hash')} "
            f"FROM {q(staged.db_table)} s WHERE s.{col(staged, 'batch')} = %s ORDER BY s.{col(staged, 'line')}",
            [batch.dataset_id, batch.pk, batch.file_name, batch.pk],
        )
        rows_imported = cursor.rowcount
        timings["publish_items"] = round(time.monotonic() - started, 3)
        gold_columns = ["item", "dataset", "label", "origin", "updated_at"]
        cursor.execute(
            f"INSERT INTO {q(gold.db_table)} ({', '.join(col(gold, c) for c in gold_columns)}) "
            f"SELECT i.{q(item.pk.column)}, i.{col(item, 'dataset')}, s.{col(staged, 'label')}, %s, %s "
            f"FROM {q(staged.db_table)} s JOIN {q(item.db_table)} i "
            f"ON i.{col(item, 'dataset')} = %s AND i.{col(item, 'external_id')} = s.{col(staged, 'external_id')} "
            f"WHERE s.{col(staged, 'batch')} = %s AND s.{col(staged, 'label')} IS NOT NULL",
            [GoldLabel.Origin.IMPORT, connection.ops.adapt_datetimefield_value(now), batch.dataset_id, batch.pk],
        )
        labelled_rows = cursor.rowcount
        timings["publish_gold_labels"] = round(time.monotonic() - started - timings["publish_items"], 3)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT s.{col(staged, 'queue_state')}, s.{col(staged, 'label')}, COUNT(*) FROM {q(staged.db_table)} s "
            f"WHERE s.{col(staged, 'batch')} = %s GROUP BY s.{col(staged, 'queue_state')}, s.{col(staged, 'label')}",
            [batch.pk],
        )
        groups = cursor.fetchall()
    if skip_row_triggers:
        references_check(
            dataset_id=batch.dataset_id, batch_id=batch.pk, label_ids=[label for _, label, _ in groups if label]
        )
    counts_add(dataset_id=batch.dataset_id, deltas=_publish_count_deltas(groups))
    return _publish_finish(
        batch, timings, started, rows_imported=rows_imported, labelled_rows=labelled_rows, now=now, warnings=warnings
    )


def _publish_finish(
    batch: ImportBatch,
    timings: dict[str, float],
    started: float,
    *,
    rows_imported: int,
    labelled_rows: int,
    now: datetime,
    warnings: dict[str, Any] | None = None,
) -> ImportBatch:
    """The publish's end, once the items and gold labels are in: the checks, `import.completed`, the signal."""
    deferred_checks_run_now()  # the rows' foreign keys, checked before the audit event takes the chain head
    timings["publish_checks"] = round(
        time.monotonic() - started - timings.get("publish_items", 0) - timings.get("publish_gold_labels", 0), 3
    )  # the counters and the foreign-key checks
    published = batch_transition(
        batch_id=batch.pk,
        from_statuses=[ImportBatch.Status.PUBLISHING],
        only_if={"attempts": batch.attempts},
        action="import.completed",
        uploader_acts=True,
        after={
            "file_name": batch.file_name,
            "file_sha256": batch.file_sha256,
            "purpose": batch.purpose,
            "rows_imported": rows_imported,
            "labelled_rows": labelled_rows,
        },
        status=ImportBatch.Status.IMPORTED,
        rows_imported=rows_imported,
        rows_rejected=0,
        rows_done=rows_imported,
        report={
            "errors": [],
            **(warnings or {"warnings": [], "warning_count": 0}),
            "labelled_rows": labelled_rows,
            "seconds": {**timings, "publish": round(time.monotonic() - started, 3)},
        },
        stage="Imported",
        finished_at=now,
        heartbeat_at=now,
    )
    if published is None:
        raise Superseded(f"Import batch {batch.pk} attempt {batch.attempts} was taken back before it published.")
    send_after_commit(items_imported, sender=Dataset, dataset_id=batch.dataset_id, batch_id=batch.pk)
    return published


def _publish_count_deltas(groups: list[tuple[str, int | None, int]]) -> dict[str, int]:
    """The counters an import adds, from (queue state, label id or None, rows) groups of its staged rows."""
    deltas: dict[str, int] = {}
    for state, label_id, rows in groups:
        deltas[f"{STATE}{state}"] = deltas.get(f"{STATE}{state}", 0) + rows
        if label_id is not None:
            deltas[f"{GOLD}{label_id}"] = deltas.get(f"{GOLD}{label_id}", 0) + rows
            if state == Item.QueueState.DONE:
                deltas[LABELLED_AT_IMPORT] = deltas.get(LABELLED_AT_IMPORT, 0) + rows
    return deltas


def full_report_path(batch_id: int) -> Path:
    """Where a rejected batch's full report (every problem, as CSV) is kept."""
    return Path(settings.LOUPE_UPLOAD_DIR) / "reports" / f"batch-{batch_id}-report.csv"


def _full_report_write(batch_id: int, result: ParseResult) -> str:
    """Write every kept problem (up to FULL_REPORT_MAX_ERRORS) as CSV; returns the path under LOUPE_UPLOAD_DIR.

    Values come from the uploaded file, so cells a spreadsheet would run as a
    formula are neutralised.
    """
    path = full_report_path(batch_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A name of its own, then an atomic rename: two attempts at one batch never write the same file.
    partial = path.with_name(f"{path.name}.{uuid.uuid4().hex}.partial")
    with partial.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["line", "column", "value", "problem"])
        for error in result.all_errors:
            writer.writerow(
                [
                    "" if error.line is None else error.line,
                    *map(neutralise_formula, (error.column, error.value, error.reason)),
                ]
            )
    partial.replace(path)
    return str(path.relative_to(settings.LOUPE_UPLOAD_DIR))


def _reject(batch: ImportBatch, result: ParseResult, *, from_status: str, cleanup: bool = True) -> ImportBatch:
    """Record a refused file: REJECTED with the report (capped in number and length) and `import.rejected`.

    The page shows the first MAX_REPORTED_ERRORS problems; every problem (up to
    FULL_REPORT_MAX_ERRORS) goes to a CSV beside the batch, offered as a download.
    """
    full_report = _full_report_write(batch.pk, result)
    rejected = batch_transition(
        batch_id=batch.pk,
        from_statuses=[from_status],
        only_if={"attempts": batch.attempts},
        action="import.rejected",
        uploader_acts=True,
        after={
            "file_name": batch.file_name,
            "file_sha256": batch.file_sha256,
            "file_size": batch.file_size,
            "purpose": batch.purpose,
            "rows_total": result.rows_total,
            "rows_rejected": result.rows_rejected,
            "error_count": result.error_count,
        },
        status=ImportBatch.Status.REJECTED,
        rows_total=result.rows_total,
        rows_imported=0,
        rows_rejected=result.rows_rejected,
        report={
            "errors": [error.as_dict() for error in result.errors],
            "error_count": result.error_count,
            "full_report": full_report,
            "full_report_errors": len(result.all_errors),
        },
        stage="Rejected",
        finished_at=timezone.now(),
    )
    if rejected is None:
        raise Superseded(f"Import batch {batch.pk} attempt {batch.attempts} was taken back before it was rejected.")
    if cleanup:
        batch_cleanup(rejected)
    return rejected


# --- In-process (the demo seed, tests) ----------------------------------------------------------------------


def import_batch_create(
    *, dataset: Dataset, user: AbstractBaseUser, file_name: str, data: bytes, purpose: str
) -> ImportBatch:
    """Store `data` and import it in this process: every row or none. For the demo seed and tests.

    The same steps as an upload through a worker. When any row is bad,
    including ids that already exist in the dataset, writes no items or gold
    labels: the batch ends REJECTED with its report and `import.rejected`, and
    ImportRejected is raised (with the report and the batch). An unknown
    purpose: ValidationError, nothing recorded. A failure of the import itself:
    RuntimeError, the batch FAILED. Side effect, after commit: `items_imported`.
    """
    batch = import_batch_upload(
        dataset=dataset, user=user, file_name=file_name, chunks=[data], purpose=purpose, dispatch=False
    )
    outcome = import_batch_process(batch_id=batch.pk)
    if outcome is None:
        raise RuntimeError(f"Import batch {batch.pk} was taken by another process.")
    if outcome.batch.status == ImportBatch.Status.REJECTED:
        assert outcome.result is not None
        raise ImportRejected(outcome.result, outcome.batch)
    if outcome.batch.status != ImportBatch.Status.IMPORTED:
        raise RuntimeError(f"Import batch {batch.pk} failed: {outcome.batch.error}")
    return outcome.batch
