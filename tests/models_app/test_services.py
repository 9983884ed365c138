"""The retraining policy and the outbox (models_app/services.py): the fifth new gold label queues exactly one run,
written first and sent to the broker after commit; the beat sweep sends what a broker outage or a lost after-commit
check left behind."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from kombu.exceptions import OperationalError

from annotations.adjudication import adjudication_submit
from annotations.models import Dataset, GoldLabel, ImportBatch, Item, Review
from annotations.queue import adjudication_next_item, queue_next_item
from annotations.services import ReviewAnswer, review_revise, review_submit
from governance.models import AuditEvent
from models_app.models import RetrainingPolicy, TrainingRun
from models_app.services import (
    PolicyChoice,
    retraining_policy_check,
    retraining_policy_update,
    training_runs_sweep,
)
from tests.helpers import answer_for, other_label, review_next, synthetic_rows


def _review_without_after_commit_work(dataset, reviewer, n: int) -> None:  # type: ignore[no-untyped-def]
    # The test's transaction never commits, so the after-commit policy check never
    # runs: exactly what a process killed right after the commit leaves behind.
    for _ in range(n):
        item = queue_next_item(dataset=dataset, reviewer=reviewer).item
        review_submit(
            item_id=item.pk,
            reviewer=reviewer,
            answer=ReviewAnswer(label=item.predicted_label, shown_prediction_id=item.prediction_id),
        )


def test_the_sweep_queues_the_run_a_lost_policy_check_missed(trained_dataset, reviewer):
    _review_without_after_commit_work(trained_dataset, reviewer, 5)  # the policy says: after 5
    assert not TrainingRun.objects.filter(dataset=trained_dataset, trigger=TrainingRun.Trigger.POLICY).exists()

    with mock.patch("models_app.tasks.training_run_execute.apply_async"):
        training_runs_sweep()
        training_runs_sweep()  # a second sweep finds the run already queued

    run = TrainingRun.objects.get(dataset=trained_dataset, trigger=TrainingRun.Trigger.POLICY)
    assert run.status == TrainingRun.Status.QUEUED
    assert "5 new gold labels" in run.reason


def test_the_sweep_leaves_a_dataset_below_its_threshold_or_disabled_alone(trained_dataset, reviewer):
    _review_without_after_commit_work(trained_dataset, reviewer, 4)
    with mock.patch("models_app.tasks.training_run_execute.apply_async"):
        training_runs_sweep()
    assert not TrainingRun.objects.filter(trigger=TrainingRun.Trigger.POLICY).exists()

    _review_without_after_commit_work(trained_dataset, reviewer, 1)
    RetrainingPolicy.objects.filter(dataset=trained_dataset).update(enabled=False)
    with mock.patch("models_app.tasks.training_run_execute.apply_async"):
        training_runs_sweep()
    assert not TrainingRun.objects.filter(trigger=TrainingRun.Trigger.POLICY).exists()


# --- The policy, after each review's commit -------------------------------------------------------------------


def _policy_runs(dataset: Dataset):
    return TrainingRun.objects.filter(dataset=dataset, trigger=TrainingRun.Trigger.POLICY)


def test_fifth_review_queues_exactly_one_policy_training_run(
    trained_dataset, reviewer, django_capture_on_commit_callbacks, broker
):
    for _ in range(4):
        with django_capture_on_commit_callbacks(execute=True):
            review_next(trained_dataset, reviewer)
    assert not _policy_runs(trained_dataset).exists()
    broker.assert_not_called()

    with django_capture_on_commit_callbacks(execute=True):
        review_next(trained_dataset, reviewer)

    run = _policy_runs(trained_dataset).get()
    broker.assert_called_once()
    assert broker.call_args.kwargs["args"] == [run.pk]
    assert run.status == TrainingRun.Status.QUEUED
    assert run.requested_by is None
    assert "5 new gold labels" in run.reason
    assert run.dispatched_at is not None
    assert AuditEvent.objects.filter(action="training.requested", object_id=str(run.pk)).count() == 1

    # While that run is queued, more reviews do not queue another.
    with django_capture_on_commit_callbacks(execute=True):
        review_next(trained_dataset, reviewer)
    assert _policy_runs(trained_dataset).count() == 1
    broker.assert_called_once()


def test_a_policy_check_not_yet_met_is_one_statement_on_postgresql(
    trained_dataset, reviewer, django_capture_on_commit_callbacks, django_assert_num_queries
):
    with django_capture_on_commit_callbacks(execute=True):
        review_next(trained_dataset, reviewer)  # one new label of the five the policy asks for
    # PostgreSQL counts the new labels in the policy's own statement; SQLite cannot take a LIMIT from a row.
    with django_assert_num_queries(1 if connection.vendor == "postgresql" else 2):
        assert retraining_policy_check(dataset_id=trained_dataset.pk) is None


def test_skips_do_not_count_towards_the_policy(trained_dataset, reviewer, django_capture_on_commit_callbacks, broker):
    for _ in range(6):
        item = queue_next_item(dataset=trained_dataset, reviewer=reviewer).item
        with django_capture_on_commit_callbacks(execute=True):
            review_submit(
                item_id=item.pk,
                reviewer=reviewer,
                answer=ReviewAnswer(label=None, shown_prediction_id=item.prediction_id),
            )

    assert not _policy_runs(trained_dataset).exists()
    broker.assert_not_called()


def test_no_training_run_exists_when_the_fifth_review_rolls_back(
    trained_dataset, reviewer, django_capture_on_commit_callbacks, broker
):
    for _ in range(4):
        with django_capture_on_commit_callbacks(execute=True):
            review_next(trained_dataset, reviewer)
    item = queue_next_item(dataset=trained_dataset, reviewer=reviewer).item
    reviews = Review.objects.count()

    # The fifth review fails inside its transaction (its audit append), so nothing is sent after commit.
    with (
        mock.patch("annotations.services.audit_record", side_effect=RuntimeError("late failure")),
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
    ):
        review_submit(item_id=item.pk, reviewer=reviewer, answer=answer_for(item))

    assert callbacks == []
    assert not _policy_runs(trained_dataset).exists()
    assert not AuditEvent.objects.filter(action="training.requested", actor__isnull=True).exists()
    assert Review.objects.count() == reviews
    broker.assert_not_called()


def test_broker_outage_keeps_the_review_and_the_run_is_sent_by_the_sweep(
    trained_dataset, reviewer, django_capture_on_commit_callbacks, broker
):
    broker.side_effect = OperationalError("Connection refused")
    for _ in range(5):
        with django_capture_on_commit_callbacks(execute=True):
            review = review_next(trained_dataset, reviewer)

    assert Review.objects.filter(pk=review.pk).exists()
    assert Item.objects.get(pk=review.item_id).queue_state == Item.QueueState.DONE
    run = _policy_runs(trained_dataset).get()
    assert broker.call_count == 1
    assert (run.status, run.dispatched_at) == (TrainingRun.Status.QUEUED, None)

    # The broker comes back; the beat sweep resends the run.
    broker.side_effect = None
    broker.reset_mock()
    sent = training_runs_sweep(now=timezone.now() + timedelta(seconds=30))

    assert sent == 1
    broker.assert_called_once()
    assert broker.call_args.kwargs["args"] == [run.pk]
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.QUEUED
    assert run.dispatched_at is not None

    # A run that was just sent is not sent again by the next sweep.
    broker.reset_mock()
    assert training_runs_sweep(now=timezone.now() + timedelta(seconds=31)) == 0
    broker.assert_not_called()


# --- Policy settings ------------------------------------------------------------------------------------------


def test_a_huge_retraining_threshold_is_refused_and_the_policy_kept(dataset, model_admin):
    with pytest.raises(ValidationError, match="between 1 and"):
        retraining_policy_update(
            dataset=dataset, user=model_admin, choice=PolicyChoice(enabled=True, new_gold_labels=10**20)
        )
    assert RetrainingPolicy.objects.get(dataset=dataset).new_gold_labels == 5


# --- What the policy counts: every gold label people derived, each item once --------------------------------


def _overlap_and_threshold(dataset: Dataset, *, overlap: int, threshold: int) -> Dataset:
    Dataset.objects.filter(pk=dataset.pk).update(overlap=overlap)
    RetrainingPolicy.objects.filter(dataset=dataset).update(new_gold_labels=threshold)
    return Dataset.objects.get(pk=dataset.pk)


def _answer(dataset: Dataset, reviewer, *, accept: bool, callbacks) -> Review:  # type: ignore[no-untyped-def]
    """Answer the reviewer's next item and run what its commit would (the policy check among it)."""
    with callbacks(execute=True):
        return review_next(dataset, reviewer, accept=accept)


def _adjudicate_next(dataset: Dataset, adjudicator, callbacks) -> Review:  # type: ignore[no-untyped-def]
    queued = adjudication_next_item(dataset=dataset, adjudicator=adjudicator)
    assert queued is not None
    with callbacks(execute=True):
        return adjudication_submit(
            item_id=queued.item.pk, adjudicator=adjudicator, label=other_label(queued.item), reason="margin"
        )


def test_only_an_import_is_left_out_of_what_the_policy_counts():
    # A new origin must be placed on one side or the other (services._MADE_BY_PEOPLE and the partial index
    # gold_reviewed_since, migration 0007, both say "every origin but import").
    assert set(GoldLabel.Origin.values) - {GoldLabel.Origin.IMPORT} == {"review", "consensus", "adjudication"}


def test_three_labels_by_consensus_of_two_reviewers_each_meet_a_policy_of_three(
    trained_dataset, reviewer, reviewer2, django_capture_on_commit_callbacks, broker
):
    dataset = _overlap_and_threshold(trained_dataset, overlap=2, threshold=3)
    for n in range(3):
        first = _answer(dataset, reviewer, accept=True, callbacks=django_capture_on_commit_callbacks)
        assert not _policy_runs(dataset).exists()  # one answer of two: no gold label yet
        second = _answer(dataset, reviewer2, accept=True, callbacks=django_capture_on_commit_callbacks)
        assert second.item_id == first.item_id
        assert GoldLabel.objects.get(item_id=second.item_id).origin == GoldLabel.Origin.CONSENSUS
        assert _policy_runs(dataset).exists() == (n == 2)

    run = _policy_runs(dataset).get()
    assert "3 new gold labels" in run.reason
    broker.assert_called_once()


def test_three_adjudicated_labels_meet_a_policy_of_three(
    trained_dataset, reviewer, reviewer2, adjudicator, django_capture_on_commit_callbacks, broker
):
    dataset = _overlap_and_threshold(trained_dataset, overlap=2, threshold=3)
    for _ in range(3):  # three disagreements: no gold label, nothing counted yet
        _answer(dataset, reviewer, accept=True, callbacks=django_capture_on_commit_callbacks)
        _answer(dataset, reviewer2, accept=False, callbacks=django_capture_on_commit_callbacks)
    assert Item.objects.filter(dataset=dataset, queue_state=Item.QueueState.ADJUDICATE).count() == 3
    assert not _policy_runs(dataset).exists()

    for n in range(3):
        decision = _adjudicate_next(dataset, adjudicator, django_capture_on_commit_callbacks)
        assert GoldLabel.objects.get(item_id=decision.item_id).origin == GoldLabel.Origin.ADJUDICATION
        assert _policy_runs(dataset).exists() == (n == 2)

    assert "3 new gold labels" in _policy_runs(dataset).get().reason
    broker.assert_called_once()


def test_a_label_derived_by_consensus_then_changed_by_adjudication_counts_once(
    trained_dataset, reviewer, reviewer2, adjudicator, django_capture_on_commit_callbacks, broker
):
    dataset = _overlap_and_threshold(trained_dataset, overlap=2, threshold=3)
    _answer(dataset, reviewer, accept=True, callbacks=django_capture_on_commit_callbacks)
    agreed = _answer(dataset, reviewer2, accept=True, callbacks=django_capture_on_commit_callbacks)
    consensus = GoldLabel.objects.get(item_id=agreed.item_id)
    assert consensus.origin == GoldLabel.Origin.CONSENSUS

    # The second reviewer changes their mind: a disagreement now, which an adjudicator settles the other way.
    item = Item.objects.get(pk=agreed.item_id)
    with django_capture_on_commit_callbacks(execute=True):
        review_revise(review_id=agreed.pk, reviewer=reviewer2, answer=answer_for(item, accept=False))
    assert Item.objects.get(pk=item.pk).queue_state == Item.QueueState.ADJUDICATE
    decision = _adjudicate_next(dataset, adjudicator, django_capture_on_commit_callbacks)
    assert decision.item_id == item.pk
    adjudicated = GoldLabel.objects.get(item_id=item.pk)
    assert (adjudicated.pk, adjudicated.origin) == (consensus.pk, GoldLabel.Origin.ADJUDICATION)
    assert adjudicated.label_id != consensus.label_id

    # Derived twice, and by two origins: one label toward the three.
    assert retraining_policy_check(dataset_id=dataset.pk) is None
    assert not _policy_runs(dataset).exists()
    for _ in range(2):
        _answer(dataset, reviewer, accept=True, callbacks=django_capture_on_commit_callbacks)
        _answer(dataset, reviewer2, accept=True, callbacks=django_capture_on_commit_callbacks)
    assert "3 new gold labels" in _policy_runs(dataset).get().reason


def test_gold_labels_imported_since_the_last_run_do_not_count(trained_dataset, reviewer, import_rows, broker):
    dataset = _overlap_and_threshold(trained_dataset, overlap=1, threshold=3)
    import_rows(synthetic_rows(4, start=500), name="labelled.csv")
    import_rows(synthetic_rows(4, start=600), purpose=ImportBatch.Purpose.HOLDOUT, name="holdout2.csv")
    last = TrainingRun.objects.filter(dataset=dataset).latest("requested_at").requested_at
    assert GoldLabel.objects.filter(dataset=dataset, origin="import", updated_at__gt=last).count() == 8

    assert retraining_policy_check(dataset_id=dataset.pk) is None
    RetrainingPolicy.objects.filter(dataset=dataset).update(schedule_hours=1)
    training_runs_sweep(now=timezone.now() + timedelta(hours=2))  # the schedule's hours have passed
    assert not TrainingRun.objects.filter(dataset=dataset, status=TrainingRun.Status.QUEUED).exists()

    for _ in range(3):
        review_next(dataset, reviewer)
    assert retraining_policy_check(dataset_id=dataset.pk) is not None


def _people_made_new_labels(dataset: Dataset, n: int) -> None:
    """n of the dataset's imported seed labels become labels reviewers agreed on just now (a shortcut for
    2n answers: only the rows the count reads matter here)."""
    seed = GoldLabel.objects.filter(dataset=dataset, origin="import", item__queue_state=Item.QueueState.DONE)
    ids = list(seed.order_by("pk").values_list("pk", flat=True)[:n])
    assert len(ids) == n
    GoldLabel.objects.filter(pk__in=ids).update(origin=GoldLabel.Origin.CONSENSUS, updated_at=timezone.now())


class _RolledBack(Exception):
    pass


def _queries_of_a_check_that_queues(dataset: Dataset) -> int:
    """The statements of a check that queues a run, rolled back after (a savepoint) so the next one can too."""
    with CaptureQueriesContext(connection) as queries:
        try:
            with transaction.atomic():
                assert retraining_policy_check(dataset_id=dataset.pk) is not None
                raise _RolledBack
        except _RolledBack:
            pass
    return len(queries)


def test_the_policy_check_takes_as_many_statements_for_one_new_label_as_for_many(
    trained_dataset, django_assert_num_queries, broker
):
    dataset = _overlap_and_threshold(trained_dataset, overlap=2, threshold=1_000)
    one_statement_or_two = 1 if connection.vendor == "postgresql" else 2  # SQLite counts apart (no LIMIT from a row)
    _people_made_new_labels(dataset, 1)
    with django_assert_num_queries(one_statement_or_two):
        assert retraining_policy_check(dataset_id=dataset.pk) is None
    _people_made_new_labels(dataset, 15)
    with django_assert_num_queries(one_statement_or_two):
        assert retraining_policy_check(dataset_id=dataset.pk) is None

    RetrainingPolicy.objects.filter(dataset=dataset).update(new_gold_labels=3)
    met_by_15 = _queries_of_a_check_that_queues(dataset)
    GoldLabel.objects.filter(dataset=dataset, origin=GoldLabel.Origin.CONSENSUS).update(origin="import")
    _people_made_new_labels(dataset, 3)
    assert _queries_of_a_check_that_queues(dataset) == met_by_15


def test_the_policy_count_walks_only_the_new_labels_people_made_through_gold_reviewed_since(
    trained_dataset, django_capture_on_commit_callbacks
):
    # The partial index of migration 0007: imported labels are not in it, and the time since the last run is
    # part of the index condition, so the count reads the new labels people made and nothing else.
    dataset = _overlap_and_threshold(trained_dataset, overlap=1, threshold=1_000)
    _people_made_new_labels(dataset, 2)
    with CaptureQueriesContext(connection) as queries:
        assert retraining_policy_check(dataset_id=dataset.pk) is None
    (count,) = [q["sql"] for q in queries.captured_queries if GoldLabel._meta.db_table in q["sql"]]

    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL enable_seqscan = off")  # a test-sized table would be read whole
            cursor.execute(f"EXPLAIN {count}")
        else:
            cursor.execute(f"EXPLAIN QUERY PLAN {count}")
        plan = [str(row[-1]) for row in cursor.fetchall()]
    # PostgreSQL: "Index Only Scan using gold_reviewed_since ..." then "Index Cond: ((dataset_id = ...) AND
    # (updated_at > ...))"; SQLite: "SEARCH ... USING INDEX gold_reviewed_since (dataset_id=? AND updated_at>?)".
    used = next((n for n, line in enumerate(plan) if "gold_reviewed_since" in line), None)
    assert used is not None, plan
    condition = plan[used] if connection.vendor == "sqlite" else plan[used + 1]
    assert "updated_at" in condition and "Filter" not in condition, plan
