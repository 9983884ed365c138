"""models_app writes: training requests (the outbox), the policy, the champion alias."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from annotations.models import Dataset, GoldLabel
from governance.audit import audit_record
from models_app.models import ModelVersion, RetrainingPolicy, TrainingRun, TrainingTrigger
from workflow_site.prepared_sql import prepared_cursor

logger = logging.getLogger(__name__)
MAX_POLICY_THRESHOLD = 1_000_000


def training_run_dispatch(*, run_id: int) -> bool:
    """Hand a queued run to the broker. False (and the run stays queued) if the broker is unreachable.

    Called after commit; the beat sweep calls it again for runs still queued,
    so a run saved while the broker was down is not lost.
    """
    from models_app import tasks

    try:
        tasks.training_run_execute.apply_async(
            args=[run_id], retry=True, retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.5}
        )
    except Exception:  # kombu raises several kinds of connection errors; all mean "try later"
        logger.warning("Broker unreachable; training run %s stays queued for the next sweep.", run_id, exc_info=True)
        return False
    TrainingRun.objects.filter(pk=run_id, status=TrainingRun.Status.QUEUED).update(dispatched_at=timezone.now())
    return True


def training_run_request(
    *,
    dataset: Dataset,
    trigger: str,
    requested_by: AbstractBaseUser | None,
    reason: str = "",
    dispatch: bool = True,
    seed: int | None = None,
) -> TrainingRun:
    """Record a reason to train and return the run that will answer it: saved now, handed to Celery after commit.

    Triggers coalesce (issue 9, point 7): a dataset has at most one queued run.
    If one is queued, the trigger is folded into it (its snapshot is not frozen
    yet, so it will train on everything the trigger asks for). If a run is
    running, a queued run is created behind it: the worker claims it only once
    the running one has ended (training.training_run_claim), so no trigger is
    refused or dropped. What the run trains (algorithm, hyperparameters, mode)
    is copied from the policy when the run is first queued. `seed` fixes the
    run's seed (the loop simulation repeats a run exactly); by default it is drawn.
    Joins the caller's transaction when there is one (a review that trips the policy).
    """
    with transaction.atomic():
        # Serialise requests per dataset (two clicks, or a click and the policy).
        Dataset.objects.select_for_update(no_key=True).get(pk=dataset.pk)
        run = TrainingRun.objects.filter(dataset=dataset, status=TrainingRun.Status.QUEUED).first()
        folded = run is not None
        if run is None:
            policy = RetrainingPolicy.objects.filter(dataset=dataset).first() or RetrainingPolicy(dataset=dataset)
            run = TrainingRun.objects.create(
                dataset=dataset,
                trigger=trigger,
                requested_by=requested_by,
                reason=reason,
                algorithm=policy.algorithm,
                hyperparameters=policy.hyperparameters,
                mode=policy.mode,
                replay_fraction=policy.replay_fraction,
                min_class_examples=policy.min_class_examples,
                seed=secrets.randbelow(2**31) if seed is None else seed,
            )
        recorded = TrainingTrigger.objects.create(
            dataset=dataset, kind=trigger, requested_by=requested_by, reason=reason, run=run
        )
        running = TrainingRun.objects.filter(dataset=dataset, status=TrainingRun.Status.RUNNING).first()
        audit_record(
            actor=requested_by,
            action="training.trigger_folded" if folded else "training.requested",
            obj=run,
            object_type="training_run",
            dataset_id=dataset.pk,
            after={
                "status": "queued",
                "trigger": trigger,
                "trigger_id": recorded.pk,
                "behind_run": running.pk if running else None,
                **({} if folded else {"algorithm": run.algorithm, "mode": run.mode, "seed": run.seed}),
            },
            reason=reason,
        )
        if dispatch and not folded:  # False only when the caller executes the run itself (the demo seed)
            transaction.on_commit(lambda: training_run_dispatch(run_id=run.pk))
    return run


def training_run_cancel(*, run_id: int, user: AbstractBaseUser, reason: str = "") -> TrainingRun:
    """Stop a run. Precondition: `user` is a model admin of its dataset.

    A queued run is cancelled at once. A running one is marked; its worker stops
    at its next progress step or epoch (training._progress), deletes what it
    wrote and ends the run as cancelled: no half-registered version. A run that
    has already ended is refused with a ValidationError saying so.
    """
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update(no_key=True).get(pk=run_id)
        if run.status == TrainingRun.Status.QUEUED:
            TrainingRun.objects.filter(pk=run.pk).update(
                status=TrainingRun.Status.CANCELLED,
                finished_at=timezone.now(),
                stage="Cancelled before it started",
                cancel_requested_at=timezone.now(),
                cancel_requested_by=user,
            )
            action = "training.cancelled"
        elif run.status == TrainingRun.Status.RUNNING:
            if run.cancel_requested_at is not None:
                raise ValidationError(f"Training run {run.pk} is already being stopped.")
            TrainingRun.objects.filter(pk=run.pk).update(cancel_requested_at=timezone.now(), cancel_requested_by=user)
            action = "training.cancel_requested"
        else:
            raise ValidationError(f"Training run {run.pk} has already {run.get_status_display().lower()}.")
        audit_record(
            actor=user,
            action=action,
            obj=run,
            object_type="training_run",
            dataset_id=run.dataset_id,
            before={"status": run.status},
            after={"status": "cancelled" if action == "training.cancelled" else "running, stopping"},
            reason=reason,
        )
        run.refresh_from_db()
    return run


def training_run_dispatch_next(*, dataset_id: int) -> bool:
    """After a run ends: hand the run queued behind it (if any) to the broker. False if none or unreachable."""
    waiting = TrainingRun.objects.filter(dataset_id=dataset_id, status=TrainingRun.Status.QUEUED).first()
    return waiting is not None and training_run_dispatch(run_id=waiting.pk)


def training_runs_sweep(*, now: timezone.datetime | None = None) -> int:
    """The outbox sweep (beat). Returns how many queued runs were handed to the broker.

    - resend queued runs nobody picked up (saved while the broker was down);
    - queue again (or, attempts used up, fail) running runs whose worker
      stopped sending heartbeats, and send the re-queued ones;
    - queue the run of any policy that is met but has none: the after-commit
      check of a review is lost if the process dies between commit and check,
      and the policy is a function of the gold labels since the last run, so
      checking again later is safe.
    """
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.LOUPE_REDISPATCH_AFTER_S)
    waiting = TrainingRun.objects.filter(status=TrainingRun.Status.QUEUED, requested_at__lt=now - timedelta(seconds=5))
    waiting = waiting.filter(dispatched_at__isnull=True) | waiting.filter(dispatched_at__lt=stale)
    sent = sum(training_run_dispatch(run_id=pk) for pk in waiting.values_list("pk", flat=True))
    sent += training_runs_requeue_lost(now=now)
    for dataset_id in RetrainingPolicy.objects.filter(enabled=True).values_list("dataset_id", flat=True):
        retraining_policy_check(dataset_id=dataset_id)
    for policy in RetrainingPolicy.objects.filter(enabled=True, schedule_hours__isnull=False):
        retraining_schedule_check(policy=policy, now=now)
    return sent


def training_runs_requeue_lost(*, now: timezone.datetime | None = None) -> int:
    """Running runs whose heartbeat is older than LOUPE_HEARTBEAT_STALE_S: the worker was killed or lost.

    Each goes back to queued and is sent again (another attempt, reusing its
    snapshot) until LOUPE_TRAINING_MAX_ATTEMPTS attempts have started; then it
    fails with that reason, and the dataset can train again. Returns how many
    re-queued runs were handed to the broker.
    """
    from models_app.run_states import training_run_requeue_lost

    now = now or timezone.now()
    stale_before = now - timedelta(seconds=settings.LOUPE_HEARTBEAT_STALE_S)
    lost = TrainingRun.objects.filter(status=TrainingRun.Status.RUNNING).filter(
        Q(heartbeat_at__lt=stale_before) | Q(heartbeat_at__isnull=True, started_at__lt=stale_before)
    )
    sent = 0
    for pk, heartbeat_at in lost.values_list("pk", "heartbeat_at"):
        run = training_run_requeue_lost(
            run_id=pk, lost_at=heartbeat_at, max_attempts=settings.LOUPE_TRAINING_MAX_ATTEMPTS
        )
        if run is not None and run.status == TrainingRun.Status.QUEUED:
            logger.warning("Training run %s: the worker stopped; queued again (attempt %s).", pk, run.attempts + 1)
            sent += training_run_dispatch(run_id=pk)
        elif run is not None:
            logger.warning("Training run %s: the worker stopped %s times; failed.", pk, run.attempts)
    return sent


# What a retraining policy counts, by number (new_gold_labels) and by schedule: the gold labels people derived
# since the last run was requested (the newest TrainingRun.requested_at of the dataset, whatever became of
# that run): from one review, from the consensus of the dataset's k reviews (overlap), or from an
# adjudicator's decision; every GoldLabel.Origin but IMPORT. A label derived again (consensus, then revised
# and adjudicated; a re-review) is still the item's one GoldLabel row with a newer updated_at, so it counts
# once. An imported gold label does not count, and the policy's help text says so: an import is one act of a
# model admin, who can start a run by hand the same minute; a holdout file imports its labels with the same
# origin and those are never trained on; and a labelled file would meet any threshold at once. An imported
# label that a reviewer then confirms or corrects becomes theirs and counts.
# Served by the partial index gold_reviewed_since, (dataset_id, updated_at) WHERE NOT (origin = 'import')
# (migration models_app 0007): the count walks just the new labels people made, never the rows of an import
# made since the last run, which gold_new_since would have walked and filtered one by one.
_MADE_BY_PEOPLE = ~Q(origin=GoldLabel.Origin.IMPORT)


def _new_gold_labels(dataset_id: int, since: Any) -> QuerySet[GoldLabel]:
    """The dataset's gold labels that count toward its retraining policy, derived after `since` (None: all)."""
    labels = GoldLabel.objects.filter(_MADE_BY_PEOPLE, dataset_id=dataset_id)
    return labels.filter(updated_at__gt=since) if since is not None else labels


@dataclass(frozen=True)
class _PolicyState:
    threshold: int  # the policy's new_gold_labels
    run_queued: bool
    last_requested_at: Any  # the newest run's request time; None before the first run
    # Gold labels people made since that run (_MADE_BY_PEOPLE), counted up to the threshold; None where the
    # statement could not count them (SQLite: no LIMIT taken from the row), so the caller counts.
    new_labels_up_to_threshold: int | None


def _policy_state(dataset_id: int) -> _PolicyState | None:
    """The dataset's enabled policy and its runs, in one fixed statement (it runs after every answer: the
    ORM's query building for it cost more CPU than the database's answer); None without an enabled policy.

    On PostgreSQL the same statement counts the new labels people made up to the threshold
    (gold_reviewed_since walks just those rows), so an answer's check is one round trip, not two.
    """
    q = connection.ops.quote_name
    runs, policies, gold = (q(m._meta.db_table) for m in (TrainingRun, RetrainingPolicy, GoldLabel))
    queued = TrainingRun.Status.QUEUED.value
    # A literal, not a parameter: the statement is prepared, and PostgreSQL's generic plan can use the partial
    # index gold_reviewed_since only if it can prove the index's predicate from the statement's text. And
    # COALESCE, not "last IS NULL OR updated_at > last": the OR kept the time out of the index condition, so
    # the generic plan walked every label of the dataset (measured: EXPLAIN ANALYZE, 100,000 labels older than
    # the last run and 100,000 imported since, walked; with the range, only the 2,000 new ones).
    made_by_people = f"NOT (g.origin = '{GoldLabel.Origin.IMPORT.value}')"
    with prepared_cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"SELECT p.new_gold_labels, EXISTS(SELECT 1 FROM {runs} r WHERE r.dataset_id = p.dataset_id"
                f" AND r.status = %s), last.requested_at, (SELECT count(*) FROM (SELECT 1 FROM {gold} g"
                f" WHERE g.dataset_id = p.dataset_id AND {made_by_people}"
                " AND g.updated_at > COALESCE(last.requested_at, '-infinity') LIMIT p.new_gold_labels) n)"
                f" FROM {policies} p LEFT JOIN LATERAL (SELECT MAX(r.requested_at) AS requested_at FROM {runs} r"
                " WHERE r.dataset_id = p.dataset_id) last ON true WHERE p.dataset_id = %s AND p.enabled",
                [queued, dataset_id],
            )
        else:
            cursor.execute(
                f"SELECT p.new_gold_labels,"
                f" EXISTS(SELECT 1 FROM {runs} r WHERE r.dataset_id = p.dataset_id AND r.status = %s),"
                f" (SELECT MAX(r.requested_at) FROM {runs} r WHERE r.dataset_id = p.dataset_id), NULL"
                f" FROM {policies} p WHERE p.dataset_id = %s AND p.enabled",
                [queued, dataset_id],
            )
        row = cursor.fetchone()
    if row is None:
        return None
    threshold, run_queued, last, new_labels = row
    requested_at = TrainingRun._meta.get_field("requested_at").get_col(TrainingRun._meta.db_table)
    for convert in connection.ops.get_db_converters(requested_at):  # SQLite gives the MAX back as text
        last = convert(last, requested_at, connection)
    return _PolicyState(
        threshold=threshold, run_queued=bool(run_queued), last_requested_at=last, new_labels_up_to_threshold=new_labels
    )


def retraining_policy_check(*, dataset_id: int) -> TrainingRun | None:
    """Queue a run if the dataset's policy is met (after a review commits, and from the beat sweep).

    Never runs inside a review's transaction: a failure here cannot undo an
    answer. Reads without locks (this runs after every review); only when the
    threshold is met does training_run_request take the dataset lock, and a
    concurrent check that queued the run first simply wins.
    """
    state = _policy_state(dataset_id)
    # No enabled policy; or a queued run, which will answer (it has not frozen its snapshot yet). A running
    # one will not see the labels given since it froze: those count toward a run queued behind it.
    if state is None or state.run_queued:
        return None
    new_labels = _new_gold_labels(dataset_id, state.last_requested_at)
    # Counted up to the threshold only (gold_reviewed_since walks just those rows), then exactly once it is met.
    reached = state.new_labels_up_to_threshold
    if reached is None:
        reached = new_labels[: state.threshold].count()
    if reached < state.threshold:
        return None
    count = new_labels.count()
    dataset = Dataset.objects.get(pk=dataset_id)
    try:
        return training_run_request(
            dataset=dataset,
            trigger=TrainingRun.Trigger.POLICY,
            requested_by=None,
            reason=f"{count} new gold labels since the last run (policy: retrain after {state.threshold}).",
        )
    except ValidationError:  # another check queued it a moment ago
        return None


def retraining_schedule_check(*, policy: RetrainingPolicy, now: Any) -> TrainingRun | None:
    """The per-dataset schedule (beat, through the sweep): a run every `schedule_hours` hours, when at least
    one gold label people made is new since the last run (training again on the same labels would only repeat
    it). "New" is what the count of retraining_policy_check counts (_MADE_BY_PEOPLE)."""
    if TrainingRun.objects.filter(dataset_id=policy.dataset_id, status=TrainingRun.Status.QUEUED).exists():
        return None
    last = (
        TrainingRun.objects.filter(dataset_id=policy.dataset_id)
        .order_by("-requested_at")
        .values_list("requested_at", flat=True)
        .first()
    )
    if last is not None and now - last < timedelta(hours=policy.schedule_hours):
        return None
    new = _new_gold_labels(policy.dataset_id, last).count()
    if not new:
        return None
    return training_run_request(
        dataset=Dataset.objects.get(pk=policy.dataset_id),
        trigger=TrainingRun.Trigger.SCHEDULE,
        requested_by=None,
        reason=f"Scheduled every {policy.schedule_hours} h; {new} new gold label(s) since the last run.",
    )


def training_trigger_drift(*, dataset_id: int, reason: str) -> TrainingRun:
    """The hook a drift alarm calls (monitoring): queue a retraining, or fold into the one queued. A drift
    alarm may open a retraining, never a promotion (DESIGN, monitoring)."""
    return training_run_request(
        dataset=Dataset.objects.get(pk=dataset_id),
        trigger=TrainingRun.Trigger.DRIFT,
        requested_by=None,
        reason=reason,
    )


@dataclass(frozen=True)
class PolicyChoice:
    """What a retraining policy asks for, as a model admin submits it (every field is checked)."""

    enabled: bool
    new_gold_labels: int
    schedule_hours: int | None = None
    algorithm: str = "logistic_regression"
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    min_class_examples: int = 5
    mode: str = RetrainingPolicy.Mode.FULL
    replay_fraction: float = 0.5


def retraining_policy_update(*, dataset: Dataset, user: AbstractBaseUser, choice: PolicyChoice) -> RetrainingPolicy:
    """Save the dataset's policy, audited with what changed. ValidationError (keyed by field, changing
    nothing) for a value out of range, an unknown algorithm or a hyperparameter it does not accept."""
    from models_app.ml.algorithms.base import HyperparameterError, params_validate
    from models_app.ml.algorithms.catalogue import catalogue

    errors: dict[str, str] = {}
    if not 1 <= choice.new_gold_labels <= MAX_POLICY_THRESHOLD:
        errors["new_gold_labels"] = f"Must be between 1 and {MAX_POLICY_THRESHOLD:,}."
    if choice.schedule_hours is not None and not 1 <= choice.schedule_hours <= 24 * 366:
        errors["schedule_hours"] = "Must be between 1 hour and a year (8,784 hours), or empty for no schedule."
    if not 1 <= choice.min_class_examples <= 10_000:
        errors["min_class_examples"] = "Must be between 1 and 10,000."
    if choice.mode not in RetrainingPolicy.Mode.values:
        errors["mode"] = f"Must be one of {', '.join(RetrainingPolicy.Mode.values)}."
    if not 0 <= choice.replay_fraction < 1:
        errors["replay_fraction"] = "Must be at least 0 and below 1 (a share of the rows fine-tuning trains on)."
    families = catalogue()
    params: dict[str, Any] = {}
    if choice.algorithm not in families:
        errors["algorithm"] = f"Unknown algorithm {choice.algorithm!r}; choose one of {', '.join(families)}."
    else:
        try:
            params = params_validate(families[choice.algorithm].hyperparameters, choice.hyperparameters)
        except HyperparameterError as exc:
            errors["hyperparameters"] = str(exc)
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        policy, _ = RetrainingPolicy.objects.select_for_update(no_key=True).get_or_create(dataset=dataset)
        fields = ("enabled", "new_gold_labels", "schedule_hours", "algorithm", "hyperparameters")
        fields += ("min_class_examples", "mode", "replay_fraction")
        before = {name: getattr(policy, name) for name in fields}
        for name in fields:
            setattr(policy, name, params if name == "hyperparameters" else getattr(choice, name))
        policy.save()
        after = {name: getattr(policy, name) for name in fields}
        audit_record(
            actor=user,
            action="retraining_policy.updated",
            obj=policy,
            object_type="retraining_policy",
            dataset_id=dataset.pk,
            before={k: v for k, v in before.items() if after[k] != v},
            after={k: v for k, v in after.items() if before[k] != v},
        )
    return policy


def champion_set(*, model_version: ModelVersion, actor: AbstractBaseUser, reason: str) -> ModelVersion | None:
    """Move the dataset's champion alias to `model_version`, in the caller's transaction.

    Returns the previous champion (now retired), if any. Re-prediction of the
    open queue is scheduled after commit.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("champion_set must run inside the promotion's transaction.")
    # Lock the dataset row: concurrent approvals for the same dataset queue here,
    # so the second one sees the first one's champion (not a half-moved alias).
    Dataset.objects.select_for_update(no_key=True).get(pk=model_version.dataset_id)
    versions = ModelVersion.objects.filter(dataset_id=model_version.dataset_id)
    previous = versions.filter(stage=ModelVersion.Stage.CHAMPION).first()
    if previous is not None:
        if previous.pk == model_version.pk:
            raise ValidationError("This version is already the champion.")
        previous.stage = ModelVersion.Stage.RETIRED
        previous.save(update_fields=["stage"])
    model_version.stage = ModelVersion.Stage.CHAMPION
    was_shadow = model_version.shadow_since is not None
    model_version.shadow_since = None  # a champion is shown to reviewers: it is no longer in shadow
    model_version.save(update_fields=["stage", "shadow_since"])
    audit_record(
        actor=actor,
        action="model_version.champion_changed",
        obj=model_version,
        object_type="model_version",
        dataset_id=model_version.dataset_id,
        before={"champion": previous.version if previous else None, **({"was_in_shadow": True} if was_shadow else {})},
        after={"champion": model_version.version},
        reason=reason,
    )

    dataset_id, version_id = model_version.dataset_id, model_version.pk
    transaction.on_commit(lambda: predictions_refresh_dispatch(dataset_id=dataset_id, model_version_id=version_id))
    return previous


def predictions_refresh_dispatch(
    *, dataset_id: int, model_version_id: int | None = None, batch_id: int | None = None
) -> bool:
    """Hand a predictions refresh to the broker. False (logged) if it is unreachable.

    Call after commit. Nothing is lost when the broker is down: the beat's
    predictions_refresh_sweep finds open items not showing the champion's
    prediction and sends the refresh again.
    """
    from models_app import tasks

    try:
        tasks.predictions_refresh.apply_async(
            args=[dataset_id, model_version_id, batch_id],
            retry=True,
            retry_policy={"max_retries": 2, "interval_start": 0},
        )
    except Exception:  # kombu raises several kinds of connection errors; all mean "try later"
        logger.warning("Broker unreachable; predictions refresh of dataset %s not sent.", dataset_id, exc_info=True)
        return False
    return True


def predictions_refresh_sweep() -> int:
    """Beat: send a refresh for each dataset whose open items do not all show the champion's prediction."""
    from annotations.models import Item

    sent = 0
    for champion in ModelVersion.objects.filter(stage=ModelVersion.Stage.CHAMPION).only("pk", "dataset_id", "version"):
        # exclude() keeps NULLs: items with no prediction at all count as stale too.
        stale = (
            Item.objects.filter(
                dataset_id=champion.dataset_id, queue_state=Item.QueueState.OPEN, purged_at__isnull=True
            )
            .exclude(predicted_by_version=champion.version)
            .exists()
        )
        if stale:
            sent += predictions_refresh_dispatch(dataset_id=champion.dataset_id, model_version_id=champion.pk)
    return sent
