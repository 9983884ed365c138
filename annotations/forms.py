from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat

from annotations.models import ImportBatch


class ImportForm(forms.Form):
    file = forms.FileField(
        label="Data file",
        help_text="CSV (UTF-8, comma-separated, header on line 1), JSON Lines (.jsonl, one object per line), "
        "Parquet (.parquet), or a Label Studio JSON export (.json: each task's data, and its last "
        "annotation as the label; task N is reported as line N+1). Problems are reported by the "
        "file's own line (Parquet: row).",
    )
    purpose = forms.ChoiceField(
        choices=ImportBatch.Purpose.choices, initial=ImportBatch.Purpose.REVIEW, widget=forms.RadioSelect
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The limits, said before the upload rather than after it (they are settings, so read here).
        csv_limit = filesizeformat(settings.IMPORT_MAX_BYTES)
        other_limit = filesizeformat(settings.IMPORT_CONVERTED_MAX_BYTES)
        self.fields["file"].help_text += f" Up to {csv_limit} for CSV, {other_limit} for the other formats."
