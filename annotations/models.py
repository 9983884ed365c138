"""Datasets and their schema, imports, items, reviews and gold labels."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q


class QueueStrategy(models.TextChoices):
    """How the queue ranks open items; each has a score in [0, 1], higher = reviewed sooner (queue_scores.py)."""

    LEAST_CONFIDENCE = "least_confidence", "Least confident first"
    MARGIN = "margin", "Smallest margin between the top two classes first"
    ENTROPY = "entropy", "Highest entropy of the predicted probabilities first"
    DISAGREEMENT = "disagreement", "Most disagreement between the champion and a candidate first"
    LABEL_ISSUE = "label_issue", "Likeliest label errors first (re-review of gold labels)"


class Dataset(models.Model):
    name = models.CharField(max_length=200, unique=True)
    slug = models.SlugField(max_length=80, unique=True)
    description = models.TextField(blank=True)
    guideline_version = models.CharField(
        max_length=40, default="1", help_text="Review guideline in force; copied onto every review."
    )
    reason_codes = models.JSONField(
        default=list,
        blank=True,
        help_text='Why a reviewer corrects the model, as [{"code": "margin", "text": "Irregular margin"}, ...] '
        "in the order the card lists them; when set, a correction must give one.",
    )
    # How the queue serves items (issue 8): annotations/queue.py and annotations/queue_scores.py.
    queue_strategy = models.CharField(
        max_length=24,
        choices=QueueStrategy.choices,
        default=QueueStrategy.LEAST_CONFIDENCE,
        help_text="Which open items the queue serves first (the rest of the order is by arrival).",
    )
    audit_slice_percent = models.PositiveSmallIntegerField(
        default=10,
        help_text="Share of served items picked uniformly at random, whatever the strategy (0–100).",
    )
    audit_slice_off_reason = models.TextField(
        blank=True, help_text="Why the random audit slice is off; required when the share is 0."
    )
    overlap = models.PositiveSmallIntegerField(
        default=1, help_text="Answers each item needs from different reviewers before its gold label is derived."
    )
    blind_percent = models.PositiveSmallIntegerField(
        default=0, help_text="Share of served items shown without the model's prediction until answered (0–100)."
    )
    model_output_off_since = models.DateTimeField(
        null=True,
        blank=True,
        help_text="The stop switch (human oversight): since when reviewers see no model output and the queue "
        "serves items in random order. Empty: the model's output is shown.",
    )
    model_output_off_reason = models.TextField(blank=True, help_text="Why the model's output was switched off.")
    # Retention (issue 10, point 10): governance/retention.py removes expired item data and audit payloads.
    retention_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Days an item's data and an audit event's payload are kept before retention removes them "
        "(leaving hashes). Empty: the site default (LOUPE_RETENTION_DAYS; unset there: kept forever).",
    )
    legal_hold_since = models.DateTimeField(
        null=True, blank=True, help_text="A legal hold: since when nothing of this dataset expires. Empty: no hold."
    )
    legal_hold_reason = models.TextField(blank=True, help_text="Why the legal hold was placed.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(audit_slice_percent__lte=100), name="dataset_audit_slice_percent"),
            models.CheckConstraint(
                condition=Q(audit_slice_percent__gt=0) | ~Q(audit_slice_off_reason=""),
                name="dataset_audit_slice_off_has_reason",
            ),
            models.CheckConstraint(condition=Q(overlap__gte=1, overlap__lte=10), name="dataset_overlap_range"),
            models.CheckConstraint(condition=Q(blind_percent__lte=100), name="dataset_blind_percent"),
            models.CheckConstraint(
                condition=Q(model_output_off_since__isnull=True) | ~Q(model_output_off_reason=""),
                name="dataset_model_output_off_has_reason",
            ),
            models.CheckConstraint(
                condition=Q(legal_hold_since__isnull=True) | ~Q(legal_hold_reason=""),
                name="dataset_legal_hold_has_reason",
            ),
        ]

    @property
    def model_output_off(self) -> bool:
        return self.model_output_off_since is not None

    @property
    def on_legal_hold(self) -> bool:
        return self.legal_hold_since is not None

    def clean(self) -> None:
        from annotations.reason_codes import reason_codes_check

        reason_codes_check(self.reason_codes)

    def __str__(self) -> str:
        return self.name


class GuidelineVersion(models.Model):
    """One published version of a dataset's labelling guideline, in Markdown; never edited once published.

    Publishing a new one makes its number the dataset's guideline_version, which
    every later review records (annotations/guidelines.py).
    """

    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="guideline_versions")
    version = models.PositiveIntegerField(help_text="The number reviews record; rises by one per publication.")
    text = models.TextField(help_text="The guideline in Markdown, shown through an allow-list sanitiser.")
    text_sha256 = models.CharField(max_length=64, help_text="sha256 of the text, as recorded in the audit event.")
    change_note = models.CharField(max_length=500, blank=True, help_text="What changed and why, for reviewers.")
    published_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    published_at = models.DateTimeField()

    class Meta:
        ordering = ["-version"]
        constraints = [models.UniqueConstraint(fields=["dataset", "version"], name="guideline_version_unique")]

    def __str__(self) -> str:
        return f"{self.dataset} guideline v{self.version}"


class Feature(models.Model):
    """One column of the dataset's schema, with what it means."""

    class Dtype(models.TextChoices):
        FLOAT = "float", "Decimal number"
        INTEGER = "integer", "Whole number"
        BOOLEAN = "boolean", "Yes / no"
        CATEGORY = "category", "Category"
        TEXT = "text", "Free text"  # a note or report: shown with its line breaks; not a model input yet

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="features")
    position = models.PositiveIntegerField(help_text="Order in the schema and in model inputs.")
    name = models.CharField(max_length=100, help_text="Column name in imported files.")
    dtype = models.CharField(max_length=16, choices=Dtype.choices, default=Dtype.FLOAT)
    unit = models.CharField(max_length=40, blank=True, help_text="Unit of measure, e.g. mm or mmol/L.")
    normal_min = models.FloatField(null=True, blank=True, help_text="Lower end of the normal range.")
    normal_max = models.FloatField(null=True, blank=True, help_text="Upper end of the normal range.")
    categories = models.JSONField(default=list, blank=True, help_text="Allowed values for a category feature.")
    is_sensitive = models.BooleanField(default=False, help_text="A sensitive attribute (for subgroup audits).")
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["dataset", "position"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "name"], name="feature_name_unique_per_dataset"),
            models.UniqueConstraint(fields=["dataset", "position"], name="feature_position_unique_per_dataset"),
            models.CheckConstraint(
                condition=Q(normal_min__isnull=True)
                | Q(normal_max__isnull=True)
                | Q(normal_min__lte=models.F("normal_max")),
                name="feature_normal_range_ordered",
            ),
            # Without allowed values every imported row would be refused. clean()
            # says which value is wrong; this catches writes that skip it.
            models.CheckConstraint(
                condition=~Q(dtype="category") | ~Q(categories=[]),
                name="feature_category_has_categories",
                violation_error_message="A category feature needs at least one allowed value.",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        super().clean()
        if self.dtype != self.Dtype.CATEGORY:
            return
        problem = _categories_problem(self.categories)
        if problem:
            raise ValidationError({"categories": problem})

    def out_of_range_direction(self, value: object) -> str | None:
        """ "low" or "high" when a number falls outside the normal range, else None."""
        if not isinstance(value, int | float) or isinstance(value, bool):
            return None
        if self.normal_min is not None and value < self.normal_min:
            return "low"
        if self.normal_max is not None and value > self.normal_max:
            return "high"
        return None


def _categories_problem(categories: object) -> str | None:
    """Why `categories` cannot be a category feature's allowed values, or None.

    Imported values are compared after stripping spaces, so a value with
    surrounding spaces could never match.
    """
    if not isinstance(categories, list):
        return 'Give the allowed values as a list of values, e.g. ["low", "high"].'
    if not categories:
        return 'A category feature needs at least one allowed value, e.g. ["low", "high"].'
    if not all(isinstance(value, str) for value in categories):
        return "Every allowed value must be text (in quotes)."
    if any(value.strip() == "" for value in categories):
        return "An allowed value is empty."
    if any(value != value.strip() for value in categories):
        return "An allowed value starts or ends with spaces: remove them."
    if len(set(categories)) != len(categories):
        return "An allowed value appears more than once."
    return None


class LabelClass(models.Model):
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="label_classes")
    position = models.PositiveIntegerField(help_text="Order on screen; the number key that picks it is position + 1.")
    name = models.CharField(max_length=100, help_text="Value used in files and the API.")
    display_name = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["dataset", "position"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "name"], name="label_name_unique_per_dataset"),
            models.UniqueConstraint(fields=["dataset", "position"], name="label_position_unique_per_dataset"),
        ]

    def __str__(self) -> str:
        return self.display_name or self.name


class DatasetMembership(models.Model):
    """Reviewers, adjudicators and model admins work only on datasets they belong to."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="dataset_memberships")
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["dataset", "user"], name="membership_unique")]

    def __str__(self) -> str:
        return f"{self.user} in {self.dataset}"


class ImportBatch(models.Model):
    class Purpose(models.TextChoices):
        REVIEW = "review", "Review pool"
        HOLDOUT = "holdout", "Sequestered holdout (labelled; never reviewed or trained on)"

    class Status(models.TextChoices):
        QUEUED = "queued", "Waiting for a worker"
        VALIDATING = "validating", "Checking every row"
        STAGING = "staging", "Staging rows"
        PUBLISHING = "publishing", "Publishing"
        IMPORTED = "imported", "Imported"
        REJECTED = "rejected", "Rejected"
        FAILED = "failed", "Failed"

    # A worker is on it: it touches heartbeat_at, and the sweep takes back a batch whose heartbeat stops.
    ACTIVE = (Status.VALIDATING, Status.STAGING, Status.PUBLISHING)
    FINISHED = (Status.IMPORTED, Status.REJECTED, Status.FAILED)

    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="import_batches")
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    uploaded_at = models.DateTimeField(auto_now_add=True)
    file_name = models.CharField(max_length=255)
    file_sha256 = models.CharField(max_length=64)
    file_size = models.PositiveBigIntegerField()
    purpose = models.CharField(max_length=16, choices=Purpose.choices, default=Purpose.REVIEW)
    status = models.CharField(max_length=16, choices=Status.choices)
    rows_total = models.PositiveIntegerField(default=0)
    rows_imported = models.PositiveIntegerField(default=0)
    rows_rejected = models.PositiveIntegerField(default=0)
    report = models.JSONField(default=dict, help_text="Row-level report: errors (line, column, value, reason).")
    stored_file = models.CharField(
        max_length=255,
        blank=True,
        help_text="The upload as stored for the worker, relative to LOUPE_UPLOAD_DIR; emptied once deleted.",
    )
    stage = models.CharField(max_length=200, blank=True, help_text="What the worker is doing, in words.")
    rows_done = models.PositiveIntegerField(default=0, help_text="Rows staged so far (the progress bar).")
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Worker attempts started.")
    dispatched_at = models.DateTimeField(null=True, blank=True, help_text="Last handed to the broker.")
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True, help_text="Last sign of life from the worker.")
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True, help_text="Why the import failed (not a problem in the file).")
    # Retention (annotations/retention.py): the row-level report quotes the file's values and ids, and the error
    # text may quote a row too; both go (with the report CSV and any upload left on disk), the counts stay.
    purged_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When retention removed this batch's row-level report, error text and files (its counts, file "
        "name and sha256 stay); empty: they are here.",
    )

    class Meta:
        ordering = ["-uploaded_at"]
        indexes = [
            # the sweep: batches still queued or in a worker's hands
            models.Index(fields=["status", "heartbeat_at"], name="import_batch_sweep"),
        ]

    def __str__(self) -> str:
        return f"{self.file_name} ({self.status})"

    @property
    def is_rejected(self) -> bool:
        return self.status == self.Status.REJECTED

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def is_active(self) -> bool:
        """Not finished: queued, or in a worker's hands (the batch page keeps polling)."""
        return not self.is_finished

    @property
    def errors_not_shown(self) -> int:
        """Problems counted in a rejected file's report but not kept in it (the report keeps the first few)."""
        return max(0, int(self.report.get("error_count", 0)) - len(self.report.get("errors", [])))


class ImportStagedRow(models.Model):
    """One validated row of a batch that is not yet published: the staging table.

    The worker fills it in short transactions (a few thousand rows each), then
    publishes the whole batch into Item and GoldLabel in one short, set-based
    INSERT ... SELECT, and deletes the batch's staged rows. Every value is
    already typed and hashed, so a later COPY can fill this table directly.
    """

    # Indexed by staged_row_batch_line, which starts with it.
    batch = models.ForeignKey(ImportBatch, on_delete=models.CASCADE, related_name="+", db_index=False)
    line = models.PositiveIntegerField(help_text="Line number in the source file (the header is line 1).")
    external_id = models.CharField(max_length=200)
    values = models.JSONField(help_text="Feature name → typed value.")
    observed_at = models.DateTimeField(null=True, blank=True)
    label = models.ForeignKey(LabelClass, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    queue_state = models.CharField(max_length=16, help_text="The item's queue state once published.")
    content_hash = models.CharField(max_length=64)
    feature_hash = models.CharField(max_length=64, null=True, blank=True, help_text="Item.feature_hash to be.")

    class Meta:
        indexes = [
            # publish (INSERT ... SELECT in file order) and the chunked clean-up: one batch's rows by line
            models.Index(fields=["batch", "line"], name="staged_row_batch_line"),
        ]

    def __str__(self) -> str:
        return f"batch {self.batch_id} line {self.line}"


class Item(models.Model):
    """One imported row: its values, where it came from, and where it is in the queue."""

    class QueueState(models.TextChoices):
        OPEN = "open", "Awaiting review"
        ADJUDICATE = "adjudicate", "Awaiting adjudication"
        DONE = "done", "Reviewed"
        HOLDOUT = "holdout", "Sequestered holdout"

    # No index of its own: item_external_id_unique and item_queue both start with the dataset, and one
    # index fewer is less work for every row an import writes.
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="items", db_index=False)
    batch = models.ForeignKey(ImportBatch, on_delete=models.PROTECT, related_name="items")
    external_id = models.CharField(max_length=200, help_text="The source system's id for the row.")
    values = models.JSONField(help_text="Feature name → typed value.")
    source_file = models.CharField(max_length=255)
    source_row = models.PositiveIntegerField(help_text="Line number in the source file (the header is line 1).")
    observed_at = models.DateTimeField(null=True, blank=True, help_text="When the source observed this row.")
    content_hash = models.CharField(max_length=64, help_text="sha256 of the row's canonical content.")
    # Null only for rows written before it existed and not yet filled (migration 0021 fills them).
    feature_hash = models.CharField(
        max_length=64,
        null=True,
        blank=True,
        help_text="sha256 of the feature values alone (annotations/feature_hash.py): the same for the same "
        "values whatever the id, label or time; the key of the leakage checks at import.",
    )
    queue_state = models.CharField(max_length=16, choices=QueueState.choices, default=QueueState.OPEN)
    queue_priority = models.FloatField(
        null=True,
        blank=True,
        help_text="1 − the strategy's score (queue_scores.py): lowest is reviewed first; null = no score yet.",
    )
    priority_strategy = models.CharField(
        max_length=24,
        blank=True,
        default="",
        db_default="",
        help_text="The strategy queue_priority was computed for (blank: none yet).",
    )
    disagreement_score = models.FloatField(
        null=True, blank=True, help_text="How much a candidate model disagrees with the champion here (0–1)."
    )
    random_key = models.FloatField(
        db_default=models.functions.Random(),
        help_text="A random number drawn at import: the audit slice serves items in this order.",
    )
    answers_count = models.PositiveSmallIntegerField(
        default=0, db_default=0, help_text="Reviewers whose answer currently counts toward the dataset's overlap."
    )
    # Set when a done item is reopened for re-review (models_app/label_issues.py): answers given before it
    # belong to the earlier round and no longer count toward consensus. Null: the item is in its first round.
    review_round_started_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the item's current review round began (reopened for re-review); null: its first round.",
    )
    leased_to = models.ForeignKey(  # indexed by item_lease, which starts with it
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    lease_started_at = models.DateTimeField(
        null=True, blank=True, help_text="When the current lease began (time on item is measured from it)."
    )
    lease_audit_slice = models.BooleanField(
        default=False, db_default=False, help_text="The current lease came from the audit slice."
    )
    lease_blind = models.BooleanField(
        default=False, db_default=False, help_text="The current lease hides the prediction until answered."
    )
    # The champion's current prediction, copied here by models_app so the
    # review loop reads one row (and annotations need not import models_app).
    prediction_id = models.BigIntegerField(null=True, blank=True, help_text="models_app Prediction shown to reviewers.")
    # No plain index: item_list_predicted (partial: an import writes no prediction) serves the PROTECT check.
    predicted_label = models.ForeignKey(
        LabelClass, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    predicted_confidence = models.FloatField(null=True, blank=True)
    predicted_probabilities = models.JSONField(null=True, blank=True, help_text="Class name → probability.")
    predicted_by_version = models.PositiveIntegerField(null=True, blank=True, help_text="Model version number.")
    # Written in the same bulk write as the prediction above, and shown to the reviewer exactly as stored,
    # so what a reviewer saw can be audited later.
    prediction_explanation = models.JSONField(
        null=True,
        blank=True,
        help_text="Top features behind the prediction: a list of {feature, value, contribution, direction}, "
        "largest |contribution| first, and the method used.",
    )
    # Retention: the data (values, explanation) is emptied; content_hash and feature_hash stay as the tombstone.
    purged_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When retention removed this item's data (its hashes stay); empty: the data is here.",
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["dataset", "external_id"], name="item_external_id_unique")]
        indexes = [
            # next item: open items of a dataset, least confident first
            models.Index(fields=["dataset", "queue_state", "queue_priority", "id"], name="item_queue"),
            # "the item I hold": a reviewer's current lease. Partial, like the two below: an import writes
            # a million rows that are neither leased nor predicted, and a partial index skips them (about
            # 0.8 s of PostgreSQL's COPY per 100,000 rows for these three; bench/import_speed.py).
            models.Index(fields=["leased_to", "dataset"], name="item_lease", condition=Q(leased_to__isnull=False)),
            # the audit slice: open items of a dataset in random order
            models.Index(fields=["dataset", "random_key"], name="item_audit_slice", condition=Q(queue_state="open")),
            # The item list (annotations/item_search.py), paged by key: each walks one range in (…, id) order.
            # unfiltered, by id
            models.Index(fields=["dataset", "id"], name="item_list_id"),
            # state = X, by id (and the "awaiting adjudication" half of disagreement)
            models.Index(fields=["dataset", "queue_state", "id"], name="item_list_state"),
            # predicted label = X, by id; and the PROTECT check when a label class is deleted. A label
            # belongs to one dataset, so it leads without the dataset (gold_label_list does the same): one
            # index for both, which every prediction writes (one of 12 per item, about 4 s of a million
            # items' refresh; bench/predictions.py).
            models.Index(
                fields=["predicted_label", "id"], name="item_list_predicted", condition=Q(predicted_label__isnull=False)
            ),
            # sort by confidence, and a confidence range
            models.Index(fields=["dataset", "predicted_confidence", "id"], name="item_list_confidence"),
            # sort by observed_at, and an observed date range
            models.Index(fields=["dataset", "observed_at", "id"], name="item_list_observed"),
            # leakage at import (annotations/import_leakage.py): the dataset's items with a given feature hash,
            # probed for each imported row (in the holdout? in the pool?)
            models.Index(fields=["dataset", "feature_hash"], name="item_feature_hash"),
            # ...and "is a row of this pool file in the holdout?": item_feature_hash finds every pool item with
            # the hash before the holdout one, and a dataset whose rows repeat (few distinct feature values)
            # has thousands per hash at a million items (a 1,000-row import took 1.2 s). The holdout is small.
            models.Index(
                fields=["dataset", "feature_hash"], name="item_holdout_feature_hash", condition=Q(queue_state="holdout")
            ),
        ]

    def __str__(self) -> str:
        return f"{self.dataset.slug}:{self.external_id}"

    @property
    def is_purged(self) -> bool:
        return self.purged_at is not None


class GoldLabel(models.Model):
    """The label an item currently has for training and evaluation.

    Derived: from the import (a labelled or holdout file) or from the newest
    review. Overlap and adjudication will change how it is derived, not where.
    """

    class Origin(models.TextChoices):
        IMPORT = "import", "Imported with the data"
        REVIEW = "review", "From a review"
        CONSENSUS = "consensus", "From agreeing reviews (overlap)"
        ADJUDICATION = "adjudication", "From an adjudicator's decision"

    item = models.OneToOneField(Item, on_delete=models.PROTECT, related_name="gold_label")
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="+", db_index=False)  # gold_new_since
    label = models.ForeignKey(LabelClass, on_delete=models.PROTECT, related_name="+", db_index=False)  # gold_label_list
    origin = models.CharField(max_length=16, choices=Origin.choices)
    # Indexed by gold_from_review (partial: an imported label has no review).
    review = models.ForeignKey(
        "Review", null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    updated_at = models.DateTimeField(help_text="When this label was last derived.")

    class Meta:
        indexes = [
            # a dataset's gold labels by time. The retraining policy's count uses
            # gold_reviewed_since instead, a partial index models_app 0007 makes in SQL (not in this model's
            # state): a migration here that rebuilds this table on SQLite must make it again.
            models.Index(fields=["dataset", "updated_at"], name="gold_new_since"),
            # the item list: gold label = X, in item order (merged with the items by id)
            models.Index(fields=["label", "item"], name="gold_label_list"),
            # the PROTECT check when a review is deleted, and "the gold label this review made"
            models.Index(fields=["review"], name="gold_from_review", condition=Q(review__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"{self.item} = {self.label}"


class Review(models.Model):
    """One reviewer's answer about one item. Immutable: a later review supersedes."""

    class Decision(models.TextChoices):
        ACCEPT = "accept", "Accepted the prediction"
        CORRECT = "correct", "Corrected the prediction"
        LABEL = "label", "Labelled (no prediction shown)"
        UNCERTAIN = "uncertain", "Uncertain (sent to adjudication)"
        SKIP = "skip", "Skipped"
        WITHDRAWN = "withdrawn", "Withdrawn by its reviewer (undo)"
        ADJUDICATE = "adjudicate", "Adjudicated"

    # Decisions that carry a label (the others never do).
    LABELLED_DECISIONS = ("accept", "correct", "label", "adjudicate")

    class Mode(models.TextChoices):
        OPEN = "open", "Prediction shown"
        BLIND = "blind", "Prediction hidden until committed"
        REVEALED = "revealed", "Revised after the hidden prediction was revealed"

    item = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="reviews")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reviews")
    decision = models.CharField(max_length=16, choices=Decision.choices)
    label = models.ForeignKey(LabelClass, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    # What the reviewer was shown (ids, not FKs: annotations does not depend on models_app).
    shown_prediction_id = models.BigIntegerField(null=True, blank=True, help_text="The prediction the reviewer saw.")
    shown_label = models.ForeignKey(LabelClass, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    shown_confidence = models.FloatField(null=True, blank=True)
    reason = models.TextField(blank=True, help_text="Why (required wording is up to the guideline).")
    reason_code = models.CharField(
        max_length=40, blank=True, help_text="The dataset's reason code the reviewer picked for a correction."
    )
    flagged = models.BooleanField(default=False, help_text="The reviewer asked for this item to be followed up.")
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.OPEN)
    selection_strategy = models.CharField(max_length=32, help_text="Why the queue picked this item.")
    selection_score = models.FloatField(null=True, blank=True, help_text="The strategy's score for this item.")
    guideline_version = models.CharField(max_length=40)
    supersedes = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The same reviewer's earlier answer this one replaces (a revision or an undo).",
    )
    time_on_item_ms = models.PositiveIntegerField(
        null=True, blank=True, help_text="From the card being served to this answer, measured by the server."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # Retention (annotations/retention.py): the one change a review ever sees, allowed by its database trigger
    # (migration 0026): the free text goes, every other column (the answer, its selection reason) stays.
    reason_removed_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When retention removed this review's free-text reason; empty: the text is here.",
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # queue: "has this reviewer already answered (or skipped) this item?"
            models.Index(fields=["item", "reviewer"], name="review_item_reviewer"),
            # the card: "you answered N today" (a reviewer's reviews since midnight)
            models.Index(fields=["reviewer", "created_at"], name="review_reviewer_created"),
            # the item list: the items a reviewer answered, in item order (a reviewer's own list)
            models.Index(fields=["reviewer", "item"], name="review_reviewer_item"),
            # the item list: items with a flagged review (few)
            models.Index(fields=["item"], name="review_flagged", condition=Q(flagged=True)),
            # the item list: items an adjudicator decided (the other half of "disagreement"; few)
            models.Index(fields=["item"], name="review_adjudication", condition=Q(decision="adjudicate")),
            # the item list: items reviewed under a selection strategy (a rare one is read as a range)
            models.Index(fields=["selection_strategy", "item"], name="review_strategy_item"),
            # the item list: items reviewed in a date range, whoever reviewed them
            models.Index(fields=["created_at", "item"], name="review_created_item"),
            # retention: reviews still holding free text, oldest first (only those, so it stays small)
            models.Index(fields=["created_at"], name="review_reason_kept", condition=~Q(reason="")),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(decision__in=("accept", "correct", "label", "adjudicate"), label__isnull=False)
                | (Q(decision__in=("skip", "uncertain", "withdrawn")) & Q(label__isnull=True)),
                name="review_label_iff_labelled_decision",
            ),
            models.CheckConstraint(
                condition=Q(reason_removed_at__isnull=True) | Q(reason=""),
                name="review_reason_removed_is_empty",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reviewer} {self.decision} {self.item}"

    def save(self, *args: object, **kwargs: object) -> None:
        if not self._state.adding:
            raise ValueError("Reviews are immutable; submit a new review instead.")
        super().save(*args, **kwargs)


class ItemCountDelta(models.Model):
    """Exact per-dataset counters, kept as deltas (issue 7: no page counts every item).

    The transaction that moves items (an import's publish, a review) inserts the
    changes it makes — `state:open` −1, `state:done` +1, `gold:<label id>` +1 —
    and a page reads a dataset's counters as the sum of its rows. Inserting,
    not updating one row per dataset, means concurrent reviews never wait for
    each other on a counter; a beat task folds the rows of each key into one
    (annotations/counters.py), so the sum stays a handful of rows.
    Keys: state:<queue state>, labelled_at_import (done items whose gold label
    came with the file), gold:<label class id>.
    """

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=40)
    delta = models.BigIntegerField()

    class Meta:
        indexes = [
            # a dataset's counters: SUM(delta) GROUP BY key over its rows
            models.Index(fields=["dataset", "key"], name="count_delta_dataset_key"),
        ]

    def __str__(self) -> str:
        return f"{self.dataset_id} {self.key} {self.delta:+d}"
