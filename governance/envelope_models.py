"""The change envelope (issue 10, point 5; in the spirit of the FDA's predetermined change control plan).

Per dataset, a versioned policy of what a retrained model may change without a new review of the plan itself:
allowed algorithms and hyperparameter ranges, allowed label sources, required evaluation sets and acceptance
criteria (governance/envelope_clauses.py). Every table here is append-only:

- ChangeEnvelopeVersion: the clauses as drafted by one model admin; never edited (a new policy is a new
  version, numbered 1, 2, 3… per dataset).
- ChangeEnvelopeSignoff: the author's signature (meaning "authored") and then a *different* model admin's
  approval (meaning "approval"). The active version of a dataset is its approved version with the highest
  number; approving writes a row, it never updates one. Four eyes is a database constraint.
- EnvelopeAssessment: one candidate judged clause by clause against one envelope version (governance/envelope.py),
  kept so a decision record shows what was judged, even after the envelope changed.

Imported by governance/models.py, so Django registers them with the governance app.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from governance.append_only import AppendOnlyModel


class ChangeEnvelopeVersion(AppendOnlyModel):
    """One version of a dataset's change envelope, as its author drafted it. Immutable."""

    dataset = models.ForeignKey("annotations.Dataset", on_delete=models.PROTECT, related_name="envelope_versions")
    number = models.PositiveIntegerField(help_text="1, 2, 3… per dataset.")
    clauses = models.JSONField(help_text="The validated clauses (governance/envelope_clauses.py), canonical form.")
    change_summary = models.TextField(help_text="What this version changes and why, as its author wrote it.")
    record_hash = models.CharField(
        max_length=64, help_text="sha256 of the version as signed: dataset, number, clauses, summary, author."
    )
    authored_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["dataset", "-number"]
        constraints = [models.UniqueConstraint(fields=["dataset", "number"], name="envelope_version_unique")]

    def __str__(self) -> str:
        return f"Change envelope v{self.number} of dataset {self.dataset_id}"


class ChangeEnvelopeSignoff(AppendOnlyModel):
    """The author's signature on a version, or another model admin's approval of it."""

    class Kind(models.TextChoices):
        AUTHORED = "authored", "Signed by its author"
        APPROVAL = "approval", "Approved (by a different model admin)"

    version = models.ForeignKey(ChangeEnvelopeVersion, on_delete=models.PROTECT, related_name="signoffs")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    signer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    version_author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The version's author, copied here so the database itself can hold four eyes.",
    )
    signature = models.OneToOneField("governance.Signature", on_delete=models.PROTECT, related_name="envelope_signoff")
    reason = models.TextField(blank=True, help_text="The approver's comment, if any.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(fields=["version", "kind"], name="envelope_signoff_once"),
            # The author signs as author; the approver is someone else, whatever the code path.
            models.CheckConstraint(
                condition=(Q(kind="authored") & Q(signer=F("version_author")))
                | (Q(kind="approval") & ~Q(signer=F("version_author"))),
                name="envelope_signoff_four_eyes",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.version}"


class EnvelopeAssessment(AppendOnlyModel):
    """A candidate judged clause by clause against an envelope version (governance/envelope.py)."""

    model_version = models.ForeignKey(
        "models_app.ModelVersion", on_delete=models.PROTECT, related_name="envelope_assessments"
    )
    envelope_version = models.ForeignKey(ChangeEnvelopeVersion, on_delete=models.PROTECT, related_name="assessments")
    champion = models.ForeignKey(
        "models_app.ModelVersion",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The champion the regression clause was judged against (empty: none).",
    )
    clauses = models.JSONField(help_text="Each clause: name, expected, actual, passed, explanation.")
    within = models.BooleanField(help_text="Every clause passed.")
    substantial_change = models.BooleanField(
        help_text="Outside the envelope: a substantial change that needs a new envelope version to be promoted."
    )
    checked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            # envelope_check and the promotions page: a version's newest assessment under an envelope version
            models.Index(fields=["model_version", "envelope_version", "-created_at"], name="envelope_assess_latest"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(within=True, substantial_change=False) | Q(within=False, substantial_change=True),
                name="envelope_within_xor",
            ),
        ]

    @property
    def failed_clause_names(self) -> str:
        """The failed clauses' names, for a table cell."""
        return ", ".join(c["clause"] for c in self.clauses if not c["passed"])

    def __str__(self) -> str:
        verdict = "within" if self.within else "substantial change"
        return f"{self.model_version_id} against envelope v{self.envelope_version_id}: {verdict}"
