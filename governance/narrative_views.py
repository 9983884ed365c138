"""Writing and signing the narratives of model cards and datasheets (governance/narratives.py).

Model admins of the dataset write and sign; auditors read the documents (document_views.py) but
cannot open these; everyone else gets a 403.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from governance.models import DocumentNarrative
from governance.narratives import (
    SECTIONS,
    narrative_document,
    narrative_get_for_user,
    narrative_latest,
    narrative_sign,
    narrative_write,
)
from models_app.selectors import model_version_get_for_user, snapshot_get_for_user
from workflow_site.access import Role

Document = DocumentNarrative.Document
WRITE_ROLES = (Role.MODEL_ADMIN,)


def _subject(request: HttpRequest, document: str, subject_id: int):  # type: ignore[no-untyped-def]
    if document == Document.MODEL_CARD:
        return model_version_get_for_user(user=request.user, pk=subject_id, roles=WRITE_ROLES)
    return snapshot_get_for_user(user=request.user, pk=subject_id, roles=WRITE_ROLES)


def _document_url(document: str, subject_id: int) -> tuple[str, int]:
    return (
        ("governance:model_card", subject_id)
        if document == Document.MODEL_CARD
        else ("governance:datasheet", subject_id)
    )


@require_http_methods(["GET", "POST"])
@login_required
def narrative_edit_view(request: HttpRequest, document: str, subject_id: int) -> HttpResponse:
    """GET: the form, filled from the newest version (draft or signed). POST: save a new version, as a
    draft or signed as its author (password); errors are shown beside their fields, status 400."""
    subject = _subject(request, document, subject_id)
    errors: dict[str, list[str]] = {}
    latest = narrative_latest(document, subject)
    values = dict(latest.sections) if latest else {}
    if request.method == "POST":
        values = {name: request.POST.get(name, "") for name, _, _ in SECTIONS[document]}
        sign = request.POST.get("action") == "sign"
        try:
            narrative = narrative_write(
                user=request.user,
                document=document,
                subject=subject,
                sections=values,
                change_note=request.POST.get("change_note", ""),
                sign=sign,
                password=request.POST.get("password", ""),
            )
        except ValidationError as exc:
            errors = exc.message_dict
        else:
            signed = "signed as its author" if sign else "saved as a draft: the document keeps its signed text"
            messages.success(request, f"Version {narrative.version} {signed}.")
            return redirect(*_document_url(document, subject.pk))
    context = {
        "document": document,
        "document_label": Document(document).label,
        "subject": subject,
        "dataset": subject.dataset,
        "sections": [(name, heading, hint, values.get(name, "")) for name, heading, hint in SECTIONS[document]],
        "narrative": narrative_document(document, subject),
        "errors": errors,
        "posted": request.POST,
        "document_url": _document_url(document, subject.pk),
    }
    return render(request, "governance/narrative_edit.html", context, status=400 if errors else 200)


@require_POST
@login_required
def narrative_sign_view(request: HttpRequest, pk: int) -> HttpResponse:
    """POST meaning=authored|reviewed, password: sign a saved version; back to its document either way."""
    narrative = narrative_get_for_user(user=request.user, pk=pk, roles=WRITE_ROLES)
    subject_id = narrative.model_version_id or narrative.snapshot_id
    assert subject_id is not None
    try:
        signature = narrative_sign(
            user=request.user,
            narrative=narrative,
            meaning=request.POST.get("meaning", ""),
            password=request.POST.get("password", ""),
        )
    except ValidationError as exc:
        # Also shown beside the form's password field (narrative_sign_form.html), at the foot of a long
        # document: the redirect lands there, not at the top where the message list is.
        messages.error(request, " ".join(exc.messages), extra_tags=f"narrative-sign-{narrative.pk}")
        name, pk = _document_url(narrative.document, subject_id)
        return redirect(reverse(name, args=[pk]) + f"#narrative-sign-{narrative.pk}")
    messages.success(request, f"Version {narrative.version} signed ({signature.get_meaning_display().lower()}).")
    return redirect(*_document_url(narrative.document, subject_id))
