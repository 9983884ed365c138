from __future__ import annotations

from django import forms

from annotations.models import ImportBatch


class ImportForm(forms.Form):
    file = forms.FileField(label="CSV file", help_text="UTF-8, comma-separated, header on line 1.")
    purpose = forms.ChoiceField(
        choices=ImportBatch.Purpose.choices, initial=ImportBatch.Purpose.REVIEW, widget=forms.RadioSelect
    )
