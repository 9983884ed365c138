from __future__ import annotations

from django import forms

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
