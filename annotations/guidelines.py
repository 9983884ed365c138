"""Labelling guidelines: versioned Markdown, published by model admins, rendered safely (issue 8, point 5).

A guideline version is immutable once published: reviewers record the number
they worked under (Review.guideline_version), so changing the text behind a
number would change what those reviews meant. A new text is a new version.

Rendering: Markdown (Python-Markdown) to HTML, then an allow-list sanitiser
(nh3, the Rust ammonia library): no raw HTML, scripts, event handlers, styles
or images get through, links keep only http, https and mailto and open with
rel="noopener noreferrer nofollow". Table alignment is written as an align
attribute, not a style, so the page's CSP (no inline styles) holds.

Numbering: a dataset starts at guideline version "1" with no written text.
The first text published becomes version 1 if nobody has reviewed yet, and
version 2 otherwise, so reviews made before any text was written never appear
to have followed it.
"""

from __future__ import annotations

import hashlib

import markdown
import nh3
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from annotations.models import Dataset, GuidelineVersion, Review
from governance.audit import audit_record

MAX_TEXT_CHARS = 100_000
MAX_NOTE_CHARS = 500

_TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "b", "i", "code", "pre",
    "blockquote", "ul", "ol", "li", "a", "table", "thead", "tbody", "tr", "th", "td", "dl", "dt", "dd",
}  # fmt: skip
_ATTRIBUTES = {"a": {"href", "title"}, "th": {"align"}, "td": {"align"}, "ol": {"start"}}


def guideline_render(text: str) -> SafeString:
    """`text` (Markdown) as HTML that is safe to put in a page: only the allow-listed tags and attributes."""
    html = markdown.markdown(
        text,
        extensions=["tables", "fenced_code", "sane_lists"],
        extension_configs={"tables": {"use_align_attribute": True}},
        output_format="html",
    )
    cleaned = nh3.clean(
        html,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )
    return mark_safe(cleaned)  # noqa: S308 - sanitised by nh3's allow-list just above


def guideline_current(dataset: Dataset) -> GuidelineVersion | None:
    """The version in force (the dataset's guideline_version), or None when no text was published for it."""
    if not dataset.guideline_version.isdigit():
        return None
    return GuidelineVersion.objects.filter(dataset=dataset, version=int(dataset.guideline_version)).first()


def _next_version(dataset: Dataset) -> int:
    latest = GuidelineVersion.objects.filter(dataset=dataset).order_by("-version").values_list("version", flat=True)
    if latest:
        return latest[0] + 1
    current = int(dataset.guideline_version) if dataset.guideline_version.isdigit() else 0
    reviewed = Review.objects.filter(item__dataset=dataset, guideline_version=dataset.guideline_version).exists()
    return current + 1 if reviewed or current == 0 else current


def guideline_publish(
    *, dataset: Dataset, user: AbstractBaseUser, text: str, change_note: str = ""
) -> GuidelineVersion:
    """Publish `text` as the dataset's next guideline version; later reviews record its number.

    Locks the dataset row (README, lock order: it comes first), so two
    publications number their versions one after the other. Audited as
    `guideline.published` with the text's sha256. Raises ValidationError (with
    the field it is about) for an empty or oversized text or note, and when the
    text is the same as the version in force.
    """
    text = text.replace("\r\n", "\n").strip()
    change_note = change_note.strip()
    if not text:
        raise ValidationError({"text": "Write the guideline before publishing it."})
    if len(text) > MAX_TEXT_CHARS:
        raise ValidationError({"text": f"The guideline is {len(text):,} characters; the limit is {MAX_TEXT_CHARS:,}."})
    for field, value in (("text", text), ("change_note", change_note)):
        if "\x00" in value:
            raise ValidationError({field: "The text contains a NUL character, which cannot be stored; remove it."})
    if len(change_note) > MAX_NOTE_CHARS:
        raise ValidationError({"change_note": f"The note is {len(change_note):,} characters; the limit is 500."})
    digest = hashlib.sha256(text.encode()).hexdigest()
    with transaction.atomic():
        locked = Dataset.objects.select_for_update(no_key=True).get(pk=dataset.pk)
        current = guideline_current(locked)
        if current is not None and current.text_sha256 == digest:
            raise ValidationError({"text": f"This is the text of version {current.version}, already in force."})
        published = GuidelineVersion.objects.create(
            dataset=locked,
            version=_next_version(locked),
            text=text,
            text_sha256=digest,
            change_note=change_note,
            published_by=user,
            published_at=timezone.now(),
        )
        previous = locked.guideline_version
        locked.guideline_version = str(published.version)
        locked.save(update_fields=["guideline_version"])
        audit_record(
            actor=user,
            action="guideline.published",
            obj=published,
            object_type="guideline_version",
            dataset_id=locked.pk,
            before={"guideline_version": previous},
            after={"guideline_version": locked.guideline_version, "text_sha256": digest, "change_note": change_note},
        )
    dataset.guideline_version = locked.guideline_version
    return published
