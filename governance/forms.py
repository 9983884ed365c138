"""The audit-trail filter: one form behind the auditor's page and the API alike."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from governance.audit_search import search_terms
from governance.selectors import AuditFilters


class IsoDateField(forms.DateField):
    """A YYYY-MM-DD date whose error names the value that was given."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(input_formats=["%Y-%m-%d"], **kwargs)

    def to_python(self, value: Any) -> Any:
        try:
            return super().to_python(value)
        except ValidationError:
            raise ValidationError(
                "“%(value)s” is not a date (YYYY-MM-DD).", code="invalid", params={"value": value}
            ) from None


class IdField(forms.IntegerField):
    """A positive record id whose error names the value that was given."""

    def __init__(self, *, what: str, **kwargs: Any) -> None:
        self.what = what
        super().__init__(min_value=1, **kwargs)

    def clean(self, value: Any) -> Any:
        try:
            return super().clean(value)
        except ValidationError:
            raise ValidationError(
                "“%(value)s” is not a %(what)s id.", code="invalid", params={"value": value, "what": self.what}
            ) from None


class AuditFilterForm(forms.Form):
    actor = forms.CharField(required=False, max_length=150, strip=True, help_text="Username of the actor.")
    action = forms.CharField(
        required=False, max_length=100, strip=True, help_text="Action name, e.g. review.submitted."
    )
    dataset = IdField(what="dataset", required=False, help_text="Dataset id.")
    date_from = IsoDateField(required=False, label="From", help_text="First day (YYYY-MM-DD), inclusive.")
    date_to = IsoDateField(required=False, label="To", help_text="Last day (YYYY-MM-DD), inclusive.")
    q = forms.CharField(
        required=False,
        max_length=200,
        strip=True,
        label="Search",
        help_text="Text every matching event contains (in its action, object, actor, reason or before/after JSON), "
        'case-insensitive; several terms must all occur; "a phrase" in quotes is one term; 3+ characters each.',
    )

    def clean_q(self) -> str:
        text = self.cleaned_data["q"]
        search_terms(text)  # refuses a term too short to search for, naming it
        return text

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", "The last day is before the first day.")
        return cleaned

    def error_list(self) -> list[str]:
        """Each problem as one sentence that names the field, for the page."""
        return [
            f"{self.fields[name].label or name.capitalize()}: {msg}"
            for name, msgs in self.errors.items()
            for msg in msgs
        ]

    def to_filters(self) -> AuditFilters:
        """The filters from the fields that are valid (is_valid() must have been called)."""
        data = self.cleaned_data
        return AuditFilters(
            actor=data.get("actor", ""),
            action=data.get("action", ""),
            dataset_id=data.get("dataset"),
            date_from=data.get("date_from"),
            date_to=data.get("date_to"),
            search=data.get("q", ""),
        )
