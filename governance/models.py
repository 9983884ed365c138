"""Governance records: the hash-chained audit trail, signatures, promotions."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from governance.append_only import AppendOnlyModel


class AuditEvent(AppendOnlyModel):
    """One state change (or login), append-only and chained by hash.

    hash = sha256(prev_hash || canonical_json(event fields)). The chain head
    lives in AuditChainHead so writers serialise on one row. Since hash scheme 2
    the fields hashed carry the payload's digest instead of the payload, so
    retention can remove an expired payload and leave a tombstone that still
    chains (governance/audit_chain.py, governance/retention.py).
    """

    append_only_name = "Audit events"

    seq = models.PositiveBigIntegerField(unique=True, help_text="Position in the chain, from 1, without gaps.")
    created_at = models.DateTimeField(help_text="When the change was recorded (UTC).")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Who made the change; empty for the system (a Celery task, a failed login).",
    )
    actor_username = models.CharField(max_length=150, blank=True, help_text="The actor's username at the time.")
    action = models.CharField(max_length=64, help_text="What happened, e.g. review.submitted.")
    object_type = models.CharField(max_length=64, blank=True, help_text="Kind of record changed, e.g. item.")
    object_id = models.CharField(max_length=64, blank=True, help_text="Primary key of the record changed.")
    dataset_id = models.BigIntegerField(null=True, blank=True, help_text="Dataset the change belongs to, if any.")
    before = models.JSONField(null=True, blank=True, help_text="State before the change.")
    after = models.JSONField(null=True, blank=True, help_text="State after the change.")
    reason = models.TextField(blank=True, help_text="Why, as given by the actor or the system.")
    request_id = models.CharField(max_length=64, blank=True, help_text="The HTTP request or task that made it.")
    prev_hash = models.CharField(max_length=64, help_text="Hash of the previous event (64 zeros for the first).")
    hash = models.CharField(max_length=64, unique=True, help_text="sha256(prev_hash || canonical JSON of this event).")
    hash_scheme = models.PositiveSmallIntegerField(
        default=1,
        help_text="1: the hash covers the payload itself (events before retention existed, never tombstoned); "
        "2: it covers payload_sha256, so an expired payload can be removed and the chain still verifies.",
    )
    payload_sha256 = models.CharField(
        max_length=64,
        blank=True,
        help_text="Scheme 2: sha256 of canonical JSON {after, before, reason}; kept when the payload is removed.",
    )
    tombstoned_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When retention removed this event's payload (before, after, reason); empty: the payload is here.",
    )

    class Meta:
        ordering = ["-seq"]
        constraints = [
            # A tombstone is a scheme-2 event with its payload gone (the database triggers allow only that update).
            models.CheckConstraint(
                condition=Q(tombstoned_at__isnull=True)
                | Q(hash_scheme=2, before__isnull=True, after__isnull=True, reason=""),
                name="audit_tombstone_is_scheme2_without_payload",
            ),
            models.CheckConstraint(
                condition=Q(hash_scheme=1) | (Q(hash_scheme=2) & ~Q(payload_sha256="")),
                name="audit_hash_scheme_known",
            ),
        ]
        indexes = [
            # auditor page: filter by action / dataset / actor, newest first
            models.Index(fields=["action", "seq"], name="audit_action_seq"),
            models.Index(fields=["dataset_id", "seq"], name="audit_dataset_seq"),
            models.Index(fields=["actor", "seq"], name="audit_actor_seq"),
            # The audit page's actor filter (by name, so failed sign-ins with no user match too)
            # and its actor menu (a loose index scan over the distinct names).
            models.Index(fields=["actor_username", "seq"], name="audit_actor_name_seq"),
            # item history: every event about one object
            models.Index(fields=["object_type", "object_id"], name="audit_object"),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} {self.object_type}:{self.object_id}"

    @property
    def is_about_item(self) -> bool:
        return self.object_type == "item"

    @property
    def is_tombstone(self) -> bool:
        return self.tombstoned_at is not None


class AuditChainHead(models.Model):
    """A single row holding the last seq and hash; locking it serialises writers.

    On PostgreSQL one statement moves the head and inserts the event
    (governance/audit.py): `prev_hash` is where that UPDATE keeps the hash it
    replaced, because RETURNING only sees the row's new values.
    """

    singleton = models.BooleanField(default=True, unique=True)
    seq = models.PositiveBigIntegerField(default=0)
    hash = models.CharField(max_length=64, default="0" * 64)
    prev_hash = models.CharField(
        max_length=64,
        default="0" * 64,
        help_text="The newest event's prev_hash: the hash the last append replaced (its UPDATE returns it).",
    )

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(singleton=True), name="audit_head_singleton")]


class Signature(AppendOnlyModel):
    """An electronic signature (21 CFR Part 11 §11.50): who, when, meaning, what. Append-only (migration 0023)."""

    append_only_name = "Signatures"

    class Meaning(models.TextChoices):
        # What the signer vouches for (§11.50(a)(3)). Stored values never change: "rollback" is the
        # meaning "rolled back" (the approval of a rollback), kept as first stored.
        AUTHORED = "authored", "Authorship"  # I wrote this record and submit it as it stands
        REVIEWED = "reviewed", "Review"  # I read this record and found it accurate; no decision
        APPROVAL = "approval", "Approval"
        REJECTION = "rejection", "Rejection"
        ROLLBACK = "rollback", "Rollback approval"  # approving a rollback to the previous champion
        OVERRIDE = "override", "Approval overriding failed gates"  # signed with the override's reason

    signer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="signatures")
    printed_name = models.CharField(max_length=300, help_text="The signer's full name as printed on the record.")
    meaning = models.CharField(
        max_length=16,
        choices=Meaning.choices,
        help_text="What the signer vouches for: authored (wrote and submits the record), reviewed (read it and "
        "found it accurate, deciding nothing), approval, rejection, rollback (approves putting the previous "
        "champion back: rolled back), override (approves although a promotion gate failed, with a reason).",
    )
    signed_at = models.DateTimeField()
    record_type = models.CharField(
        max_length=64, help_text="Kind of record signed (governance/signing.py knows how to re-hash each)."
    )
    record_id = models.CharField(max_length=64, help_text="Primary key of the signed record.")
    record_hash = models.CharField(
        max_length=64, help_text="sha256 of the signed record as signed (e.g. candidate + evaluation)."
    )

    def __str__(self) -> str:
        return f"{self.printed_name} — {self.meaning} — {self.signed_at:%Y-%m-%d %H:%M}"


class PromotionRequest(models.Model):
    """A request to make a candidate ModelVersion the dataset's champion."""

    class Status(models.TextChoices):
        # The transitions between them live in governance/promotion_states.py (one table).
        DRAFT = "draft", "Draft"  # being written by its requester; not offered for a decision
        PENDING = "pending", "Pending"  # submitted and signed by its requester; waiting for a decision
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        WITHDRAWN = "withdrawn", "Withdrawn"  # taken back by its requester before a decision

    class Kind(models.TextChoices):
        PROMOTION = "promotion", "Promotion"
        ROLLBACK = "rollback", "Rollback"  # the previous champion back, through the same four eyes

    kind = models.CharField(
        max_length=16,
        choices=Kind.choices,
        default=Kind.PROMOTION,
        help_text="A promotion of a candidate, or a rollback to the champion the current one replaced.",
    )
    model_version = models.ForeignKey(
        "models_app.ModelVersion", on_delete=models.PROTECT, related_name="promotion_requests"
    )
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    requested_at = models.DateTimeField(auto_now_add=True)
    reason = models.TextField(help_text="Why this version should go live.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    request_signature = models.OneToOneField(
        Signature,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="authored_promotion",
        help_text="The requester's signature (meaning: authored) made when the request was submitted.",
    )
    submitted_at = models.DateTimeField(null=True, blank=True, help_text="When the draft became pending (signed).")
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    withdrawal_reason = models.TextField(blank=True, help_text="Why the requester withdrew the request.")
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True)
    signature = models.OneToOneField(
        Signature, null=True, blank=True, on_delete=models.PROTECT, related_name="promotion"
    )
    previous_champion = models.ForeignKey(
        "models_app.ModelVersion",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The champion this approval replaced (for rollback and lineage).",
    )

    gate_results = models.JSONField(
        default=list,
        blank=True,
        help_text="The promotion gates as evaluated against the champion of the moment, stored at the decision.",
    )
    override_reason = models.TextField(blank=True, help_text="Why the approver approved despite a failed gate.")
    envelope_assessment = models.ForeignKey(
        "governance.EnvelopeAssessment",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The change-envelope check judged at the decision (empty: the dataset had no envelope).",
    )

    class Meta:
        ordering = ["-requested_at"]
        constraints = [
            # Four eyes: nobody decides their own request, whatever the code path.
            models.CheckConstraint(condition=~Q(decided_by=F("requested_by")), name="promotion_not_self_decided"),
            models.CheckConstraint(
                condition=Q(status__in=["draft", "pending", "approved", "rejected", "withdrawn"]),
                name="promotion_status_known",
            ),
            # At most one request per version waiting for a decision; drafts do not count (several people may
            # draft a request for the same version; only one can be submitted at a time).
            models.UniqueConstraint(
                fields=["model_version"], condition=Q(status="pending"), name="promotion_one_pending_per_version"
            ),
        ]

    def __str__(self) -> str:
        return f"Promotion of {self.model_version} ({self.status})"

    @property
    def is_pending(self) -> bool:
        return self.status == self.Status.PENDING

    @property
    def is_draft(self) -> bool:
        return self.status == self.Status.DRAFT


class PromotionGates(models.Model):
    """A dataset's promotion gates (issue 10, point 4): what a candidate must show against the current champion
    before a normal approval; a failed gate can only be overridden by a signed approval with a reason."""

    dataset = models.OneToOneField("annotations.Dataset", on_delete=models.CASCADE, related_name="promotion_gates")
    min_holdout_accuracy = models.FloatField(
        null=True, blank=True, help_text="The candidate's holdout accuracy must be at least this (0–1); empty: none."
    )
    max_regression_points = models.FloatField(
        default=2.0,
        help_text="Fails when the candidate is worse than the champion by more than this many accuracy points with "
        "95% confidence (the paired bootstrap interval's upper end below −points), overall.",
    )
    max_subgroup_regression_points = models.FloatField(
        default=5.0,
        help_text="The same for every subgroup of a sensitive feature large enough to judge: fails when the "
        "candidate's interval lies wholly more than this many points below the champion's accuracy there.",
    )
    max_ece = models.FloatField(
        null=True, blank=True, help_text="Expected calibration error at most this; empty: none."
    )
    paired_test_not_worse = models.BooleanField(
        default=True, help_text="Fails when the paired test on the holdout says the candidate is worse."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "promotion gates"
        constraints = [
            models.CheckConstraint(condition=Q(max_regression_points__gte=0), name="gates_regression_nonnegative"),
            models.CheckConstraint(
                condition=Q(max_subgroup_regression_points__gte=0), name="gates_subgroup_regression_nonnegative"
            ),
        ]

    def __str__(self) -> str:
        return f"Promotion gates of {self.dataset}"


class DataAccess(models.Model):
    """Who was shown which item's data, when and why (reads, kept apart from the state-change chain).

    Reads are many times more frequent than changes, so they go to their own
    append-only table rather than serialising every card view on the audit
    chain's head row.
    """

    class Purpose(models.TextChoices):
        REVIEW_CARD = "review_card", "Shown on a review card"
        ITEM_HISTORY = "item_history", "Opened in the item history"
        API = "api", "Returned by the API"
        ITEM_LIST = "item_list", "Listed on the item list page"

    accessed_at = models.DateTimeField(auto_now_add=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    item_id = models.BigIntegerField(help_text="The item whose data was shown.")
    dataset_id = models.BigIntegerField()
    purpose = models.CharField(max_length=16, choices=Purpose.choices)
    served_by = models.CharField(
        max_length=32,
        blank=True,
        db_default="",  # a database default: raw INSERTs (and older writers mid-deploy) leave it blank
        help_text="The queue strategy that served this item to the reader (a review card or the next-item API); "
        "blank for other reads. The audit slice's serves are the base of unbiased estimates, answered or not.",
    )
    request_id = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-accessed_at"]
        indexes = [
            # datasheets: which items the random audit slice served (10% of serves, so a small partial index)
            models.Index(
                fields=["dataset_id", "accessed_at"],
                condition=Q(served_by="audit_slice"),
                name="access_audit_slice_served",
            ),
            # item history: who read this item
            models.Index(fields=["item_id", "accessed_at"], name="access_item_time"),
            # "what did this person read?"
            models.Index(fields=["user", "accessed_at"], name="access_user_time"),
        ]

    def save(self, *args: object, **kwargs: object) -> None:
        if not self._state.adding:
            raise ValueError("Data-access records are append-only.")
        super().save(*args, **kwargs)


class PasswordState(models.Model):
    """Whether a user's password is their own, or one somebody else set (governance/credentials.py).

    A password set by a site admin (the admin's password form, or its add-user
    form) is temporary: until its holder chooses their own, every page sends them
    to the password-change page, the API answers 403 and they cannot sign. No row
    means the user chose (or was seeded with) their own password.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="loupe_password_state"
    )
    must_change = models.BooleanField(
        default=False, help_text="True while the password is one somebody else set: it must be changed at sign-in."
    )
    set_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The site admin who last set this user's password (the audit trail keeps their name).",
    )
    set_at = models.DateTimeField(null=True, blank=True, help_text="When somebody else last set the password.")
    changed_at = models.DateTimeField(null=True, blank=True, help_text="When the user last chose their own password.")

    def __str__(self) -> str:
        return "temporary (must be changed)" if self.must_change else "chosen by its holder"


class ApiToken(models.Model):
    """An API token: only its sha256 digest is stored; the secret is shown once, at creation.

    Tokens are long random strings (256 bits), so a fast unsalted hash is enough
    (nothing to brute-force) and lets a request find its token by digest with one
    indexed lookup. Revoked and expired tokens stay as rows (history for the site
    admin and the audit trail) and never authenticate.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, help_text="What the token is for, chosen by its owner.")
    prefix = models.CharField(
        max_length=16, help_text="The token's first characters, to tell tokens apart; not enough to use it."
    )
    digest = models.CharField(
        max_length=64, unique=True, help_text="sha256 of the token (hex); the token itself is never stored."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(help_text="After this the token is refused (401).")
    last_used_at = models.DateTimeField(
        null=True, blank=True, help_text="Last authenticated request (updated at most once a minute)."
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API token"
        indexes = [
            # the account page: a user's tokens, newest first
            models.Index(fields=["user", "-created_at"], name="api_token_user_created"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(expires_at__gt=F("created_at")), name="api_token_expires_after_created"),
        ]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name})"


class AuditCheckpoint(AppendOnlyModel):
    """A signed Merkle tree head over the first `tree_size` audit events (issue 10, point 1).

    The hash chain alone cannot tell a rewritten trail from a genuine one: whoever can
    write the table can recompute every later hash and move the head. A checkpoint's
    Ed25519 signature is made with a key the database does not hold, so rewriting any
    event it covers (or deleting events under it) shows as a root that no longer matches;
    an exported copy kept elsewhere holds even if the checkpoint rows are deleted too.
    Append-only, like the events (triggers in migration 0014).
    """

    append_only_name = "Audit checkpoints"

    tree_size = models.PositiveBigIntegerField(unique=True, help_text="How many events (seq 1..tree_size) it covers.")
    root_hash = models.CharField(max_length=64, help_text="RFC 9162 Merkle tree head over the events' hashes (hex).")
    last_seq = models.PositiveBigIntegerField(help_text="The last event covered (equal to tree_size: seq has no gaps).")
    last_event_hash = models.CharField(max_length=64, help_text="The hash of that last event (hex).")
    created_at = models.DateTimeField(help_text="When it was made (UTC); part of what is signed.")
    public_key = models.CharField(max_length=64, help_text="The Ed25519 public key that signed it (base64, raw).")
    key_fingerprint = models.CharField(max_length=64, help_text="sha256 of the raw public key (hex).")
    signature = models.CharField(max_length=128, help_text="Ed25519 signature over the canonical statement (base64).")
    # Nullable with no default, so that adding it was ALTER TABLE ADD COLUMN on SQLite too (a default would
    # have rebuilt the table and dropped its append-only triggers). Empty on checkpoints made before it.
    leaf_hashes = models.BinaryField(
        null=True,
        editable=False,
        help_text="The raw 32-byte hashes of the events this checkpoint added to the previous one's (seq previous"
        " tree_size+1 .. tree_size), in order. They are the Merkle leaves the signed root covers, so they cannot be"
        " altered without the root showing it; after an edit with every later hash recomputed, comparing them with"
        " the events names the first event that differs.",
    )

    class Meta:
        ordering = ["-tree_size"]

    def __str__(self) -> str:
        return f"checkpoint at {self.tree_size} events ({self.root_hash[:12]}…)"


class DocumentNarrative(AppendOnlyModel):
    """One version of the narrative a model admin writes for a model card or a datasheet (issue 10, point 8).

    The generated sections of both documents come from registry facts; these are the parts only a
    person can write (intended use, ethical considerations, why the data was collected, ...). Each
    edit is a new row with the next version number: rows are never changed or deleted (triggers in
    migration 0022). A version becomes the document's text once its author has signed it (meaning
    "authored"); until then it is a draft. The signatures are DocumentNarrativeSignature rows.
    """

    append_only_name = "Narrative versions"

    class Document(models.TextChoices):
        MODEL_CARD = "model_card", "Model card"
        DATASHEET = "datasheet", "Datasheet"

    document = models.CharField(max_length=16, choices=Document.choices)
    dataset = models.ForeignKey("annotations.Dataset", on_delete=models.PROTECT, related_name="+")
    model_version = models.ForeignKey(
        "models_app.ModelVersion",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The version a model card's narrative describes (empty for a datasheet).",
    )
    snapshot = models.ForeignKey(
        "models_app.DatasetSnapshot",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The snapshot a datasheet's narrative describes (empty for a model card).",
    )
    version = models.PositiveIntegerField(help_text="1 for the first text of this document, then one more per edit.")
    sections = models.JSONField(help_text="Section name → plain text, as written (the document's section names).")
    subject_hash = models.CharField(
        max_length=64,
        help_text="sha256 of what the text describes when it was written: the model version's signed record "
        "(artifact, snapshot, evaluations) or the snapshot's content hash.",
    )
    written_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    written_at = models.DateTimeField()
    change_note = models.CharField(max_length=500, blank=True, help_text="What changed since the previous version.")

    class Meta:
        ordering = ["-version"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(document="model_card", model_version__isnull=False, snapshot__isnull=True)
                    | Q(document="datasheet", model_version__isnull=True, snapshot__isnull=False)
                ),
                name="narrative_document_has_its_subject",
            ),
            # The versions of one document (these unique keys are also the indexes its page reads by).
            models.UniqueConstraint(
                fields=["model_version", "version"],
                condition=Q(document="model_card"),
                name="narrative_model_card_version_unique",
            ),
            models.UniqueConstraint(
                fields=["snapshot", "version"],
                condition=Q(document="datasheet"),
                name="narrative_datasheet_version_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.document} narrative v{self.version}"


class DocumentNarrativeSignature(AppendOnlyModel):
    """A signature on one narrative version (authored by its writer; reviewed by a second model admin).

    Kept apart from the narrative so the narrative row never changes when it is signed; append-only too.
    """

    append_only_name = "Narrative signatures"

    narrative = models.ForeignKey(DocumentNarrative, on_delete=models.PROTECT, related_name="signatures")
    signature = models.OneToOneField(Signature, on_delete=models.PROTECT, related_name="+")

    def __str__(self) -> str:
        return f"signature {self.signature_id} on narrative {self.narrative_id}"


# The change envelope's tables live in their own module (this one would pass ~400 lines); imported here so
# Django registers them with this app.
from governance.envelope_models import (  # noqa: E402
    ChangeEnvelopeSignoff,
    ChangeEnvelopeVersion,
    EnvelopeAssessment,
)
from governance.verification_models import AuditVerificationRun  # noqa: E402

__all__ = [
    "ApiToken",
    "AuditChainHead",
    "AuditCheckpoint",
    "AuditEvent",
    "AuditVerificationRun",
    "ChangeEnvelopeSignoff",
    "ChangeEnvelopeVersion",
    "DataAccess",
    "DocumentNarrative",
    "DocumentNarrativeSignature",
    "EnvelopeAssessment",
    "PasswordState",
    "PromotionGates",
    "PromotionRequest",
    "Signature",
]
