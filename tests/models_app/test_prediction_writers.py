"""Several connections write a refresh's chunks at once (models_app/prediction_writers.py): the same rows as
one writer, each chunk whole or not at all, and one predictor per model version at a time."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from models_app import prediction, prediction_writers
from models_app.models import Prediction
from models_app.prediction import predictions_create
from models_app.prediction_writers import chunks_written
from models_app.prediction_writers import prediction_writers as writers_for
from tests.helpers import champion_predictions_removed, database_connect, database_sessions

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="several writing connections: PostgreSQL"),
]

_SHOWN = ("predicted_label_id", "predicted_confidence", "predicted_probabilities", "predicted_by_version")


def _outcome(dataset, champion):  # type: ignore[no-untyped-def]
    predictions = Prediction.objects.filter(model_version=champion).order_by("item_id")
    items = dataset.items.filter(queue_state="open").order_by("pk")
    item_of = {p.pk: p.item_id for p in predictions}  # prediction ids differ between runs; their items do not
    return (
        list(predictions.values_list("item_id", "label_id", "confidence", "probabilities")),
        [(item.pk, item_of.get(item.prediction_id), *(getattr(item, f) for f in _SHOWN)) for item in items],
    )


def _prediction_locks_held(*, by_this_session: bool = False) -> int:
    """The prediction run locks held in this test's database (pg_locks is the whole server's, and other test
    processes use other databases; an advisory lock's two keys are its classid and objid)."""
    mine = " AND pid = pg_backend_pid()" if by_this_session else ""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = %s AND granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())" + mine,
            [prediction_writers._PREDICTION_RUN_LOCK],
        )
        return cursor.fetchone()[0]


def test_outside_a_transaction_a_refresh_has_several_writers_and_inside_one_only_the_callers(settings):
    settings.LOUPE_PREDICTION_WRITERS = 3
    assert writers_for(10) == 3
    assert writers_for(2) == 2  # never more than chunks
    from django.db import transaction

    with transaction.atomic():
        assert writers_for(10) == 1


def test_two_writers_write_the_same_rows_and_audit_every_chunk_as_one(trained_dataset, monkeypatch, settings):
    from governance.models import AuditEvent

    monkeypatch.setattr(prediction, "CHUNK", 7)
    champion, ids = champion_predictions_removed(trained_dataset)
    settings.LOUPE_PREDICTION_WRITERS = 1
    assert predictions_create(model_version=champion, item_ids=ids, update_items=True) == len(ids)
    alone = _outcome(trained_dataset, champion)

    champion_predictions_removed(trained_dataset)
    settings.LOUPE_PREDICTION_WRITERS = 2
    before_events = AuditEvent.objects.filter(action="predictions.created").count()
    before_connections = database_sessions()
    assert predictions_create(model_version=champion, item_ids=ids, update_items=True) == len(ids)

    assert _outcome(trained_dataset, champion) == alone
    assert _prediction_locks_held() == 0, "the run's lock ends with the run"
    chunks = -(-len(ids) // 7)
    assert AuditEvent.objects.filter(action="predictions.created").count() - before_events == chunks
    assert database_sessions() == before_connections


def test_a_writer_that_fails_stops_the_refresh_and_leaves_no_chunk_half_written(trained_dataset, monkeypatch, settings):
    monkeypatch.setattr(prediction, "CHUNK", 7)
    settings.LOUPE_PREDICTION_WRITERS = 2
    champion, ids = champion_predictions_removed(trained_dataset)
    real_copy = prediction._copy_onto_items
    failing_chunk = ids[7:14]

    def copy_or_fail(model_version, predicted, **kwargs):  # type: ignore[no-untyped-def]
        if predicted.item_ids == failing_chunk:
            raise RuntimeError("the database went away during chunk 2")
        return real_copy(model_version, predicted, **kwargs)

    monkeypatch.setattr(prediction, "_copy_onto_items", copy_or_fail)
    with pytest.raises(RuntimeError, match="chunk 2"):
        predictions_create(model_version=champion, item_ids=ids, update_items=True)

    predicted = set(Prediction.objects.filter(model_version=champion).values_list("item_id", flat=True))
    shown = set(
        trained_dataset.items.filter(predicted_by_version=champion.version, pk__in=ids).values_list("pk", flat=True)
    )
    assert predicted == shown, "each chunk wrote its predictions and showed them, or neither"
    assert _prediction_locks_held() == 0, "a failed run releases its lock"
    assert not predicted & set(failing_chunk)
    assert set(ids[:7]) <= predicted  # handed over before the failure, written whole
    chunks = [set(ids[start : start + 7]) for start in range(0, len(ids), 7)]
    assert all(chunk <= predicted or not chunk & predicted for chunk in chunks)


def test_a_refresh_waits_while_another_refresh_of_its_version_runs_then_the_next_finds_nothing_to_do(
    trained_dataset,
):
    champion, ids = champion_predictions_removed(trained_dataset)
    other = database_connect(autocommit=True)  # holds the version's prediction lock, as a running refresh does
    key = [prediction_writers._PREDICTION_RUN_LOCK, champion.pk]
    other.execute("SELECT pg_advisory_lock(%s, %s)", key)
    outcome: list[int | BaseException] = []

    def refresh() -> None:
        try:
            outcome.append(predictions_create(model_version=champion, item_ids=ids, update_items=True))
        except BaseException as exc:  # noqa: BLE001 - shown by the assertion below
            outcome.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=refresh)
    thread.start()
    try:
        thread.join(timeout=1.5)
        assert thread.is_alive(), "the refresh must wait for the lock"
        assert not Prediction.objects.filter(model_version=champion).exists()
    finally:
        other.execute("SELECT pg_advisory_unlock(%s, %s)", key)
        other.close()
        thread.join(timeout=60)
    assert outcome == [len(ids)]
    assert predictions_create(model_version=champion, item_ids=ids, update_items=True) == 0


def test_chunks_written_with_one_writer_writes_in_order_on_the_callers_thread():
    seen: list[tuple[int, str]] = []

    def write(chunk: int) -> int:
        seen.append((chunk, threading.current_thread().name))
        return chunk

    assert chunks_written(iter([1, 2, 3]), write, writers=1) == 6
    assert seen == [(n, threading.current_thread().name) for n in (1, 2, 3)]


def test_chunks_written_stops_at_a_failing_producer_after_writing_what_it_handed_over():
    written: list[int] = []
    lock = threading.Lock()

    def chunks():  # type: ignore[no-untyped-def]
        yield 1
        yield 2
        raise RuntimeError("the model broke on chunk 3")

    def write(chunk: int) -> int:
        with lock:
            written.append(chunk)
        return 1

    with pytest.raises(RuntimeError, match="chunk 3"):
        chunks_written(chunks(), write, writers=2)
    assert sorted(written) == [1, 2]


@pytest.mark.django_db(transaction=False)
def test_inside_a_transaction_the_run_lock_is_the_transactions_and_ends_with_it(trained_dataset):
    from django.db import transaction

    champion, ids = champion_predictions_removed(trained_dataset)
    with transaction.atomic():
        assert predictions_create(model_version=champion, item_ids=ids, update_items=True) == len(ids)
        # held to the caller's commit: its chunks are not committed yet
        assert _prediction_locks_held(by_this_session=True) == 1
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [prediction_writers._PREDICTION_RUN_LOCK, champion.pk])
            assert cursor.fetchone()[0] is False, "not a session-level lock (that could outlive an aborted transaction)"
