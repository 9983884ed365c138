"""`{% version_signatures version %}`: a model version's signatures wherever the version is shown (issue 10,
point 3: "the signature is shown wherever the signed record is shown").

For the models pages, which models_app renders without knowing governance: the tag reads the signatures
on the version (its promotion or rollback approvals, overrides, rejections, requests) and checks each
against the version as it is now, so a version changed after signing says so on the page that shows it.
Two or three queries whatever the number of versions in the registry: it asks about one version.
"""

from __future__ import annotations

from typing import Any

from django import template

from governance.models import Signature
from governance.signing import signature_checks_for

register = template.Library()


@register.inclusion_tag("governance/includes/version_signatures.html")
def version_signatures(version: Any) -> dict[str, Any]:
    """The version's signatures, newest first, each with its check (verified, or why not)."""
    if version is None:
        return {"rows": []}
    signatures = list(
        Signature.objects.filter(record_type="model_version", record_id=str(version.pk))
        .select_related("signer")
        .order_by("-signed_at", "-pk")
    )
    checks = signature_checks_for(signatures)
    return {"rows": [(signature, checks[signature.pk]) for signature in signatures], "version": version}
