"""The model registry, training runs, snapshots, predictions and evaluations."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class RetrainingPolicy(models.Model):
    class Mode(models.TextChoices):
        FULL = "full", "Retrain from scratch"
        FINE_TUNE = "fine_tune", "Fine-tune the champion (torch models), with replay of earlier labels"

    dataset = models.OneToOneField("annotations.Dataset", on_delete=models.CASCADE, related_name="retraining_policy")
    enabled = models.BooleanField(default=True)
    # What counts as new, and why an import does not: models_app/services.py, _MADE_BY_PEOPLE.
    new_gold_labels = models.PositiveIntegerField(
        default=20,
        help_text="Queue a training run after this many new gold labels since the last run was requested: "
        "derived from one review, from agreeing reviews (overlap) or by an adjudicator, each item counted once "
        "however often its label changed. Imported labels do not count.",
    )
    schedule_hours = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Also retrain every this many hours when at least one gold label is new in the same sense "
        "(empty: no schedule).",
    )
    algorithm = models.CharField(
        max_length=64,
        default="logistic_regression",
        help_text="The model family (a name in models_app.ml.algorithms.REGISTRY).",
    )
    hyperparameters = models.JSONField(
        default=dict, blank=True, help_text="The algorithm's hyperparameters; missing ones take their defaults."
    )
    min_class_examples = models.PositiveSmallIntegerField(
        default=5, help_text="Refuse to train when a label class present in the data has fewer examples than this."
    )
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.FULL)
    replay_fraction = models.FloatField(
        default=0.5, help_text="Fine-tuning: the share of earlier gold labels in what it trains on (0 to below 1)."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "retraining policies"
        constraints = [
            models.CheckConstraint(condition=Q(new_gold_labels__gte=1), name="policy_threshold_positive"),
            models.CheckConstraint(
                condition=Q(replay_fraction__gte=0) & Q(replay_fraction__lt=1), name="policy_replay_fraction_range"
            ),
            models.CheckConstraint(condition=Q(min_class_examples__gte=1), name="policy_min_class_examples_positive"),
        ]

    def __str__(self) -> str:
        return f"Retrain {self.dataset} after {self.new_gold_labels} new gold labels"


class DatasetSnapshot(models.Model):
    """The exact gold labels a training run froze, with a content hash."""

    dataset = models.ForeignKey("annotations.Dataset", on_delete=models.PROTECT, related_name="snapshots")
    created_at = models.DateTimeField(auto_now_add=True)
    label_count = models.PositiveIntegerField()
    content_hash = models.CharField(
        max_length=64, help_text="sha256 over (item id, content hash, label) in item order."
    )

    def __str__(self) -> str:
        return f"Snapshot {self.pk} of {self.dataset} ({self.label_count} labels)"


class SnapshotLabel(models.Model):
    snapshot = models.ForeignKey(DatasetSnapshot, on_delete=models.CASCADE, related_name="labels")
    item = models.ForeignKey("annotations.Item", on_delete=models.PROTECT, related_name="+")
    label = models.ForeignKey("annotations.LabelClass", on_delete=models.PROTECT, related_name="+")
    gold_label = models.ForeignKey("annotations.GoldLabel", on_delete=models.PROTECT, related_name="+")
    review = models.ForeignKey(
        "annotations.Review",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The review the label came from (lineage to the reviewer), if any.",
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["snapshot", "item"], name="snapshot_item_unique")]
        # lineage: "which snapshots contain this item?"
        indexes = [models.Index(fields=["item"], name="snapshot_label_item")]


class TrainingRun(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    class Trigger(models.TextChoices):
        POLICY = "policy", "Retraining policy"
        MANUAL = "manual", "Started by hand"
        SEED = "seed", "Initial model"
        SCHEDULE = "schedule", "Schedule"
        DRIFT = "drift", "Drift alarm"

    dataset = models.ForeignKey("annotations.Dataset", on_delete=models.PROTECT, related_name="training_runs")
    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reason = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0, help_text="0–100, updated by the worker.")
    stage = models.CharField(max_length=100, blank=True, help_text="What the worker is doing now.")
    requested_at = models.DateTimeField(auto_now_add=True)
    dispatched_at = models.DateTimeField(null=True, blank=True, help_text="When it was last handed to the broker.")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    snapshot = models.ForeignKey(DatasetSnapshot, null=True, blank=True, on_delete=models.PROTECT, related_name="runs")
    heartbeat_at = models.DateTimeField(
        null=True, blank=True, help_text="Last sign of life from the worker running it; the sweep re-queues stale runs."
    )
    attempts = models.PositiveSmallIntegerField(default=0, help_text="How many times a worker has claimed this run.")
    worker_lost_at = models.DateTimeField(
        null=True, blank=True, help_text="Last heartbeat of the latest attempt whose worker stopped."
    )
    # What the run was asked to train, copied from the policy when it was queued (later edits do not change it).
    algorithm = models.CharField(max_length=64, default="logistic_regression")
    hyperparameters = models.JSONField(default=dict, blank=True)
    mode = models.CharField(max_length=16, choices=RetrainingPolicy.Mode.choices, default=RetrainingPolicy.Mode.FULL)
    replay_fraction = models.FloatField(default=0.5)
    min_class_examples = models.PositiveSmallIntegerField(default=5)
    seed = models.PositiveIntegerField(default=0, help_text="Seeds every random choice of the fit (reproducibility).")
    epoch = models.PositiveIntegerField(null=True, blank=True, help_text="The epoch the fit is in (iterative models).")
    epochs_total = models.PositiveIntegerField(null=True, blank=True)
    cancel_requested_at = models.DateTimeField(
        null=True, blank=True, help_text="A model admin asked to stop it; the worker stops at its next step."
    )
    cancel_requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-requested_at"]
        indexes = [
            # outbox sweep: queued runs not yet picked up
            models.Index(fields=["status", "dispatched_at"], name="run_status_dispatched"),
            models.Index(fields=["dataset", "requested_at"], name="run_dataset_requested"),
        ]

    def __str__(self) -> str:
        return f"Run {self.pk} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in (self.Status.QUEUED, self.Status.RUNNING)

    @property
    def is_cancelling(self) -> bool:
        return self.status == self.Status.RUNNING and self.cancel_requested_at is not None

    @property
    def succeeded(self) -> bool:
        return self.status == self.Status.SUCCEEDED

    @property
    def max_attempts(self) -> int:
        return settings.LOUPE_TRAINING_MAX_ATTEMPTS

    @property
    def current_attempt(self) -> int:
        """The attempt this run is on: a queued run waits for its next one."""
        return self.attempts + 1 if self.status == self.Status.QUEUED else max(self.attempts, 1)


class TrainingTrigger(models.Model):
    """One reason to train (a policy threshold, a schedule, a drift alarm, a person), kept even when a run is
    already under way: it is folded into the queued run, or into the next one, never refused or dropped.
    The snapshot a run freezes records which triggers it answers."""

    dataset = models.ForeignKey("annotations.Dataset", on_delete=models.PROTECT, related_name="training_triggers")
    kind = models.CharField(max_length=16, choices=TrainingRun.Trigger.choices)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    run = models.ForeignKey(
        TrainingRun, on_delete=models.PROTECT, related_name="triggers", help_text="The run that answers it."
    )
    snapshot = models.ForeignKey(
        DatasetSnapshot,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="triggers",
        help_text="Set when the run freezes its snapshot: the triggers this snapshot answers.",
    )

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} trigger for run {self.run_id}"


class ModelVersion(models.Model):
    class Stage(models.TextChoices):
        CANDIDATE = "candidate", "Candidate"
        CHAMPION = "champion", "Champion"
        RETIRED = "retired", "Retired"

    dataset = models.ForeignKey("annotations.Dataset", on_delete=models.PROTECT, related_name="model_versions")
    version = models.PositiveIntegerField(help_text="1, 2, 3… per dataset.")
    algorithm = models.CharField(max_length=100)
    training_run = models.OneToOneField(TrainingRun, on_delete=models.PROTECT, related_name="model_version")
    snapshot = models.ForeignKey(DatasetSnapshot, on_delete=models.PROTECT, related_name="model_versions")
    artifact_path = models.CharField(max_length=500, help_text="Relative to ARTIFACT_ROOT; written by the system only.")
    artifact_sha256 = models.CharField(max_length=64, help_text="Checked before every load.")
    feature_names = models.JSONField(help_text="Input columns, in order.")
    class_names = models.JSONField(help_text="Output classes, in order.")
    metrics = models.JSONField(default=dict, help_text="Holdout metrics of this version at registration.")
    fit_info = models.JSONField(
        default=dict,
        blank=True,
        help_text="How it was fitted: algorithm, hyperparameters, seed, calibration applied and why, warnings, "
        "epochs, warm start, library and code versions.",
    )
    stage = models.CharField(max_length=16, choices=Stage.choices, default=Stage.CANDIDATE)
    shadow_since = models.DateTimeField(
        null=True,
        blank=True,
        help_text="In shadow since: it predicts new and open items, never shown to reviewers, scored against them.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["dataset", "-version"]
        constraints = [
            # One shadow per dataset: the disagreement queue reads one champion-vs-shadow score per item.
            models.UniqueConstraint(
                fields=["dataset"], condition=Q(shadow_since__isnull=False), name="one_shadow_per_dataset"
            ),
            models.UniqueConstraint(fields=["dataset", "version"], name="model_version_unique"),
            # The champion alias: exactly one live version per dataset.
            models.UniqueConstraint(fields=["dataset"], condition=Q(stage="champion"), name="one_champion_per_dataset"),
        ]

    def __str__(self) -> str:
        return f"{self.dataset.slug} v{self.version}"

    @property
    def is_champion(self) -> bool:
        return self.stage == self.Stage.CHAMPION


class Prediction(models.Model):
    item = models.ForeignKey("annotations.Item", on_delete=models.PROTECT, related_name="predictions")
    # Indexed by prediction_version_item, which starts with it.
    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, related_name="predictions", db_index=False
    )
    label = models.ForeignKey("annotations.LabelClass", on_delete=models.PROTECT, related_name="+")
    confidence = models.FloatField(help_text="Probability of the predicted label.")
    probabilities = models.JSONField(help_text="Class name → probability.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["item", "model_version"], name="prediction_unique")]
        indexes = [
            # lineage (governance/lineage.py): the first items a version predicted, in item order, and how
            # many (counted up to a cap) — one range of this index per version; it also serves every
            # "this version's predictions" filter the plain foreign-key index served before.
            models.Index(fields=["model_version", "item"], name="prediction_version_item"),
        ]

    def __str__(self) -> str:
        return f"{self.model_version}: {self.item_id} → {self.label_id} ({self.confidence:.2f})"


class Evaluation(models.Model):
    """One model version's metrics on the sequestered holdout, as measured by one run."""

    class Role(models.TextChoices):
        CANDIDATE = "candidate", "Candidate"
        CHAMPION = "champion", "Champion"

    training_run = models.ForeignKey(TrainingRun, on_delete=models.PROTECT, related_name="evaluations")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="evaluations")
    role = models.CharField(max_length=16, choices=Role.choices)
    holdout_size = models.PositiveIntegerField()
    holdout_hash = models.CharField(max_length=64, help_text="sha256 of the holdout items and labels used.")
    metrics = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["training_run", "role"]
