"""The verify page's upload: checkpoint documents an auditor kept outside Loupe.

A checkpoint document (`audit_checkpoint --export`, or the API's
GET audit/checkpoints/{id}/document/) is what a third party keeps so that a
rewrite of the trail shows even when the stored checkpoints were rewritten or
deleted too. `verify_audit --checkpoint FILE` checks the trail against such
files from a shell; this form lets an auditor do the same from the browser:
each file is read and parsed here, and an unreadable one is refused naming
the file and what is wrong, before any run is asked for.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from governance.checkpoint_signing import exported_checkpoint_parse
from governance.verification_runs import MAX_EXPORTED_CHECKPOINTS

# A document without leaf hashes is under 1 kB; with them (--with-leaves) about 43 bytes per event it covers.
MAX_DOCUMENT_BYTES = 2 * 1024 * 1024
# All of them together: the run keeps them in one row, and the API's JSON body has the same bound.
MAX_TOTAL_BYTES = 5 * 1024 * 1024


class _MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class _MultipleFileField(forms.FileField):
    """Several files under one name (Django's documented pattern for <input type=file multiple>)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("widget", _MultipleFileInput(attrs={"accept": ".json,application/json"}))
        super().__init__(**kwargs)

    def clean(self, data: Any, initial: Any = None) -> list[Any]:
        files = data if isinstance(data, list | tuple) else [data] if data else []
        return [super(_MultipleFileField, self).clean(file, initial) for file in files] or self._required()

    def _required(self) -> list[Any]:
        if self.required:
            raise ValidationError(self.error_messages["required"], code="required")
        return []


class KeptCheckpointsForm(forms.Form):
    documents = _MultipleFileField(
        label="Checkpoint documents you kept",
        help_text="JSON files exported from Loupe (audit_checkpoint --export, or the checkpoint's document in the "
        f"API); up to {MAX_EXPORTED_CHECKPOINTS}, each under {MAX_DOCUMENT_BYTES // (1024 * 1024)} MB and "
        f"{MAX_TOTAL_BYTES // (1024 * 1024)} MB in all.",
    )

    def clean_documents(self) -> list[dict[str, Any]]:
        files = self.cleaned_data["documents"]
        if len(files) > MAX_EXPORTED_CHECKPOINTS:
            raise ValidationError(f"{len(files)} files: at most {MAX_EXPORTED_CHECKPOINTS} at once.")
        total = sum(file.size for file in files)
        if total > MAX_TOTAL_BYTES:
            raise ValidationError(f"{total:,} bytes in all: at most {MAX_TOTAL_BYTES:,} at once.")
        documents, errors = [], []
        for file in files:
            try:
                documents.append(_document(file))
            except ValueError as exc:
                errors.append(ValidationError("%(name)s: %(why)s", params={"name": file.name, "why": exc}))
        if errors:
            raise ValidationError(errors)
        return documents


def _document(file: Any) -> dict[str, Any]:
    """The file's JSON, parsed and checked as the worker will parse it (ValueError says what is wrong)."""
    if file.size > MAX_DOCUMENT_BYTES:
        raise ValueError(f"{file.size:,} bytes, over the {MAX_DOCUMENT_BYTES:,} a checkpoint document may have.")
    try:
        document = json.loads(file.read().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not a JSON document ({exc}).") from exc
    exported_checkpoint_parse(document)  # raises ValueError naming the first thing that is wrong
    return {key: value for key, value in document.items() if key != "how_to_verify"}
