"""The loop, measured (issue 9, point 12): an oracle reviewer answers the real queue from held-back labels.

One seed's loop, all through the services a person's actions go through:

1. a fresh dataset from a source (models_app/simulation_data.py): schema,
   labelled seed set, holdout and review pool imported by `import_batch_create`;
   the queue's strategy and audit slice set by `dataset_queue_settings_set`
   ("random" is the audit slice at 100%: every item a uniform draw, served by
   the queue itself and recorded as such on the review);
2. the first model: `training_run_request` (dispatch=False) then
   `training_run_execute`, made champion, and the open pool re-predicted;
3. the oracle asks `queue_next_item` for its next item and answers it with the
   item's true label through `review_submit`; every `retrain_every` answers,
   step 2 again, and the new model is measured on the holdout with
   `ml.evaluation.evaluate` (accuracy, log loss, ECE).

Promotion goes through `champion_set` in its own transaction, not the four-eyes
request and signature (governance/promotions.py): models_app may not import
governance (.importlinter, "apps-are-layered"), and every candidate is promoted
by construction here, so a signed approval would record a decision nobody made.
The move is still audited (`model_version.champion_changed`, with this reason).

Reproducible: the split, the queue's random draws, the audit slice's random
keys and each training run's seed all come from the simulation seed, so the
same seed gives the same curve. The worker's tasks run in-process (Celery
eager) while a loop runs, so nothing is left waiting in the broker.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from django.contrib.auth.models import Group, User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.text import slugify

from annotations.models import Dataset, DatasetMembership, Feature, ImportBatch, Item, LabelClass, QueueStrategy
from annotations.queue import STRATEGY_AUDIT_SLICE, queue_next_item, queue_random
from annotations.services import ReviewAnswer, import_batch_create, review_submit
from annotations.workbench import QueueSettings, dataset_queue_settings_set
from governance.audit import audit_record
from models_app.data import frame_for_items, holdout_labels
from models_app.ml.evaluation import evaluate
from models_app.ml.learning_curve import CurvePoint
from models_app.model_runtime import model_load
from models_app.models import ModelVersion, RetrainingPolicy, TrainingRun
from models_app.prediction import predictions_refresh
from models_app.services import champion_set, training_run_request
from models_app.simulation_data import DEFAULT_PER_CLASS, SOURCES, SourceData, source_load, source_split
from models_app.training import training_run_execute
from workflow_site.access import Role

STRATEGIES = ("least_confidence", "margin", "entropy", "random")
ADMIN_USERNAME = "loop-sim-admin"
ORACLE_USERNAME = "loop-sim-oracle"
MAX_BUDGET = 100_000
MAX_SEEDS = 100
_BOOTSTRAP = 200  # evaluate()'s intervals are not used by the curve (its spread is over seeds): keep them cheap


@dataclass(frozen=True)
class LoopConfig:
    """What one simulation runs: the same for every seed."""

    source: str
    strategy: str
    budget: int
    retrain_every: int
    audit_slice_percent: int
    per_class: int

    @property
    def queue_settings(self) -> QueueSettings:
        random_only = self.strategy == "random"
        percent = 100 if random_only else self.audit_slice_percent
        return QueueSettings(
            strategy=QueueStrategy.LEAST_CONFIDENCE if random_only else self.strategy,
            audit_slice_percent=percent,
            audit_slice_off_reason="" if percent else "Loop simulation: measuring the strategy without the slice.",
            overlap=1,
            blind_percent=0,
        )


def loop_config_build(
    *,
    source: str,
    strategy: str,
    budget: int,
    retrain_every: int,
    audit_slice_percent: int | None,
    per_class: int | None,
    seeds: int,
) -> LoopConfig:
    """The checked configuration; ValidationError naming every bad argument and why."""
    errors: dict[str, str] = {}
    if source not in SOURCES:
        errors["source"] = f"Unknown source {source!r}; choose one of {', '.join(SOURCES)}."
    if strategy not in STRATEGIES:
        errors["strategy"] = f"Unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}."
    if not 1 <= budget <= MAX_BUDGET:
        errors["budget"] = f"The budget is a number of answers: 1 to {MAX_BUDGET:,}, got {budget}."
    if not 1 <= retrain_every <= max(budget, 1):
        errors["retrain_every"] = f"Retrain every 1 to --budget ({budget}) answers, got {retrain_every}."
    if not 1 <= seeds <= MAX_SEEDS:
        errors["seeds"] = f"Run 1 to {MAX_SEEDS} seeds, got {seeds}."
    if audit_slice_percent is not None and not 0 <= audit_slice_percent <= 100:
        errors["audit_slice"] = f"The audit slice is a share of served items: 0 to 100 (%), got {audit_slice_percent}."
    elif strategy == "random" and audit_slice_percent not in (None, 100):
        errors["audit_slice"] = (
            "The random strategy is the audit slice at 100%; "
            f"--audit-slice {audit_slice_percent} would mix in least confidence."
        )
    if per_class is not None and not 2 <= per_class <= 1000:
        errors["seed_per_class"] = f"Seed rows per class: 2 (the least a class trains with) to 1000, got {per_class}."
    if errors:
        raise ValidationError(errors)
    return LoopConfig(
        source=source,
        strategy=strategy,
        budget=budget,
        retrain_every=retrain_every,
        audit_slice_percent=10 if audit_slice_percent is None else audit_slice_percent,
        per_class=per_class or DEFAULT_PER_CLASS[source],
    )


@dataclass(frozen=True)
class LoopUsers:
    admin: User  # imports, sets the queue, trains, promotes
    oracle: User  # the reviewer who answers with the true labels


def loop_users_ensure() -> LoopUsers:
    """The simulation's two accounts (made once, audited, with no usable password: nobody logs in as them)."""
    made = []
    for username, role, first in (
        (ADMIN_USERNAME, Role.MODEL_ADMIN, "Simulation"),
        (ORACLE_USERNAME, Role.REVIEWER, "Oracle"),
    ):
        user = User.objects.filter(username=username).first()
        if user is None:
            with transaction.atomic():
                user = User.objects.create_user(username=username, first_name=first, last_name="(loop simulation)")
                user.set_unusable_password()
                user.save(update_fields=["password"])
                user.groups.add(Group.objects.get_or_create(name=str(role))[0])
                audit_record(
                    actor=None,
                    action="user.created",
                    obj=user,
                    object_type="user",
                    after={"username": username, "is_staff": False, "is_superuser": False, "groups": [str(role)]},
                    reason="manage.py simulate_loop: the loop simulation's account",
                )
        made.append(user)
    return LoopUsers(admin=made[0], oracle=made[1])


@contextlib.contextmanager
def _tasks_in_process() -> Iterator[None]:
    """Celery tasks sent meanwhile (after-commit re-predictions, import inference) run here, not in a broker."""
    from workflow_site.celery import app

    before = (app.conf.task_always_eager, app.conf.task_eager_propagates)
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, True
    try:
        yield
    finally:
        app.conf.task_always_eager, app.conf.task_eager_propagates = before


def _slug_free(base: str) -> str:
    base = slugify(base)[:72]
    slug, n = base, 1
    while Dataset.objects.filter(slug=slug).exists():  # a fresh copy per run: never reuse a dataset
        n += 1
        slug = f"{base}-{n}"
    return slug


def _dataset_create(data: SourceData, config: LoopConfig, *, slug: str, users: LoopUsers) -> Dataset:
    with transaction.atomic():
        dataset = Dataset.objects.create(
            name=f"Loop simulation {slug}",
            slug=slug,
            description=f"{data.description}; {config.strategy} queue, made by manage.py simulate_loop.",
        )
        Feature.objects.bulk_create(
            [
                Feature(
                    dataset=dataset,
                    position=i,
                    name=f.name,
                    dtype=f.dtype,
                    unit=f.unit,
                    normal_min=f.normal_min,
                    normal_max=f.normal_max,
                    description=f.description,
                )
                for i, f in enumerate(data.features)
            ]
        )
        LabelClass.objects.bulk_create(
            [
                LabelClass(dataset=dataset, position=i, name=n, display_name=n.capitalize())
                for i, n in enumerate(data.classes)
            ]
        )
        # Disabled: the simulation retrains every `retrain_every` answers itself. The minimum per class is
        # the seed set's, so the first model can train on it.
        RetrainingPolicy.objects.create(
            dataset=dataset, enabled=False, new_gold_labels=config.retrain_every, min_class_examples=config.per_class
        )
        DatasetMembership.objects.create(dataset=dataset, user=users.admin)
        DatasetMembership.objects.create(dataset=dataset, user=users.oracle)
    return dataset


def _random_keys_draw(dataset: Dataset, rng: np.random.Generator) -> None:
    """Draw the pool's audit-slice keys again, from the seed: the database's RANDOM() at import cannot be
    seeded, and without this the same seed would not give the same curve. Still a uniform draw per item."""
    items = list(Item.objects.filter(dataset=dataset, queue_state=Item.QueueState.OPEN).order_by("pk").only("pk"))
    for item, key in zip(items, rng.random(len(items)).tolist(), strict=True):
        item.random_key = key
    Item.objects.bulk_update(items, ["random_key"], batch_size=2000)


def _retrain(dataset: Dataset, users: LoopUsers, *, seed: int, answers: int) -> ModelVersion:
    """Train on every gold label so far, make the new version champion, and re-predict the open pool."""
    first = answers == 0
    run = training_run_request(
        dataset=dataset,
        trigger=TrainingRun.Trigger.SEED if first else TrainingRun.Trigger.MANUAL,
        requested_by=users.admin,
        reason="Loop simulation: " + ("first model, on the seed set" if first else f"retrain after {answers} answers"),
        dispatch=False,
        seed=(seed * 1_000_003 + answers) % 2**31,
    )
    version = training_run_execute(run_id=run.pk)
    if version is None:
        run.refresh_from_db()
        raise RuntimeError(f"Loop simulation: training run {run.pk} ended {run.status}: {run.error}")
    with transaction.atomic():
        champion_set(
            model_version=version,
            actor=users.admin,
            reason=f"Loop simulation: every new model goes live (after {answers} answers)",
        )
    # After commit champion_set has already sent the refresh (run in-process); this covers callers inside an
    # outer transaction (tests), where it has not yet. Either way each open item is predicted once.
    predictions_refresh(dataset_id=dataset.pk, model_version_id=version.pk)
    return version


def _measure(version: ModelVersion, dataset: Dataset, *, seed: int, answers: int, audit: int) -> CurvePoint:
    holdout = holdout_labels(dataset)
    model = model_load(version)
    classes = list(version.class_names)
    frame = frame_for_items([item_id for item_id, _, _ in holdout], list(model.spec.features))
    proba = model.predict_proba(frame, classes)
    metrics = evaluate([label for _, _, label in holdout], proba, classes, n_boot=_BOOTSTRAP, seed=seed)
    return CurvePoint(
        seed=seed,
        answers=answers,
        training_labels=version.snapshot.label_count,
        audit_slice_answers=audit,
        model_version=version.version,
        accuracy=metrics["accuracy"],
        log_loss=metrics["log_loss"],
        ece=metrics["ece"],
    )


def loop_simulate(
    *,
    config: LoopConfig,
    seed: int,
    slug_prefix: str,
    users: LoopUsers,
    progress: Callable[[CurvePoint], None] | None = None,
) -> list[CurvePoint]:
    """One seed's loop on a fresh dataset; the curve's points, from the seed model (0 answers) on.

    Stops early, with a last point, when the pool runs out before the budget.
    """
    data = source_load(config.source)
    split = source_split(data, seed=seed, per_class=config.per_class)
    rng = np.random.default_rng([seed, 1])
    queue_random.seed(seed)  # the audit-slice draws
    with _tasks_in_process():
        audit_tag = "random" if config.strategy == "random" else f"{config.strategy}-a{config.audit_slice_percent}"
        slug = _slug_free(f"{slug_prefix}-{config.source}-{audit_tag}-s{seed}")
        dataset = _dataset_create(data, config, slug=slug, users=users)
        for name, body, purpose in (
            ("seed-labelled.csv", split.seed_csv, ImportBatch.Purpose.REVIEW),
            ("holdout.csv", split.holdout_csv, ImportBatch.Purpose.HOLDOUT),
            ("review-pool.csv", split.pool_csv, ImportBatch.Purpose.REVIEW),
        ):
            import_batch_create(dataset=dataset, user=users.admin, file_name=name, data=body, purpose=purpose)
        dataset_queue_settings_set(dataset_id=dataset.pk, user=users.admin, wanted=config.queue_settings)
        dataset.refresh_from_db()
        _random_keys_draw(dataset, rng)
        labels = {label.name: label for label in LabelClass.objects.filter(dataset=dataset)}

        def point(answers: int, audit: int) -> CurvePoint:
            version = _retrain(dataset, users, seed=seed, answers=answers)
            measured = _measure(version, dataset, seed=seed, answers=answers, audit=audit)
            if progress is not None:
                progress(measured)
            return measured

        points = [point(0, 0)]
        answers = audit = 0
        while answers < config.budget:
            queued = queue_next_item(dataset=dataset, reviewer=users.oracle)
            if queued is None:
                break  # the pool is used up
            truth = labels[split.oracle[queued.item.external_id]]
            review_submit(
                item_id=queued.item.pk,
                reviewer=users.oracle,
                answer=ReviewAnswer(label=truth, shown_prediction_id=queued.item.prediction_id),
            )
            answers += 1
            audit += queued.strategy == STRATEGY_AUDIT_SLICE
            if answers % config.retrain_every == 0:
                points.append(point(answers, audit))
        if points[-1].answers != answers:
            points.append(point(answers, audit))
    return points
