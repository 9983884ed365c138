from __future__ import annotations

from django import forms

from annotations.models import ImportBatch


class ImportForm(forms.Form):
    file = forms.FileField(
        label="CSV or Label Studio file",
        help_text="CSV: UTF-8, comma-separated, header on line 1. Or a Label Studio JSON export (.json): "
        "each task's data, and its last annotation as the label; task N is reported as line N+1.",
    )
    purpose = forms.ChoiceField(
        choices=ImportBatch.Purpose.choices, initial=ImportBatch.Purpose.REVIEW, widget=forms.RadioSelect
    )
