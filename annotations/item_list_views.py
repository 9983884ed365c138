"""The item list page (issue 8, point 7): a GET form of filters over annotations/item_search.py.

Every filter, sort and page is in the query string, so each view of the list is a link
that works without JavaScript; htmx only swaps the results in place.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from annotations.item_search import (
    SELECTION_STRATEGIES,
    SORTS,
    ItemFilters,
    ItemListScope,
    ItemPage,
    ItemSearchInvalid,
    item_list_scope_for_user,
    items_search_for_user,
)
from annotations.models import Item
from governance.audit import ReadPurpose, data_accesses_record
from workflow_site.access import Role, has_role

PAGE_SIZES = (25, 50, 100, 200)
SORT_LABELS = {
    "id": "Id, oldest first",
    "-id": "Id, newest first",
    "confidence": "Confidence, lowest first",
    "-confidence": "Confidence, highest first",
    "observed": "Observed, earliest first",
    "-observed": "Observed, latest first",
}


# A browser's date picker; the value it sends is YYYY-MM-DD, the one format accepted.
_DAY = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class ItemListForm(forms.Form):
    """The list's query string. Parses types; item_search checks what needs the dataset (labels, ranges)."""

    state = forms.ChoiceField(required=False, label="State", choices=[("", "any"), *Item.QueueState.choices])
    gold_label = forms.ChoiceField(required=False, label="Gold label")
    predicted_label = forms.ChoiceField(required=False, label="Predicted label")
    min_confidence = forms.FloatField(required=False, min_value=0, max_value=1, label="Confidence from")
    max_confidence = forms.FloatField(required=False, min_value=0, max_value=1, label="Confidence to")
    strategy = forms.ChoiceField(
        required=False,
        label="Strategy",
        choices=[("", "any"), *((s, s.replace("_", " ")) for s in SELECTION_STRATEGIES)],
    )
    reviewer = forms.TypedChoiceField(required=False, label="Reviewer", coerce=int, empty_value=None)
    disagreement = forms.BooleanField(required=False, label="Disagreement only")
    flagged = forms.BooleanField(required=False, label="Flagged only")
    observed_from = forms.DateField(required=False, label="Observed from", input_formats=["%Y-%m-%d"], widget=_DAY)
    observed_to = forms.DateField(required=False, label="Observed to", input_formats=["%Y-%m-%d"], widget=_DAY)
    reviewed_from = forms.DateField(required=False, label="Reviewed from", input_formats=["%Y-%m-%d"], widget=_DAY)
    reviewed_to = forms.DateField(required=False, label="Reviewed to", input_formats=["%Y-%m-%d"], widget=_DAY)
    sort = forms.ChoiceField(required=False, label="Sort by", choices=[(s, SORT_LABELS[s]) for s in SORTS])
    limit = forms.TypedChoiceField(
        required=False, label="Rows", coerce=int, empty_value=100, choices=[(n, n) for n in PAGE_SIZES]
    )
    after = forms.CharField(required=False, max_length=120, label="Page after")
    before = forms.CharField(required=False, max_length=120, label="Page before")

    def __init__(self, data: Any, *, scope: ItemListScope) -> None:
        super().__init__(data)
        labels = [("", "any"), *((name, label.display_name or name) for name, label in scope.labels.items())]
        self.fields["gold_label"].choices = labels
        self.fields["predicted_label"].choices = labels
        self.fields["reviewer"].choices = [("", "anyone"), *((u.pk, u.get_username()) for u in scope.reviewers())]
        if scope.own_only:
            self.fields["reviewer"].choices = self.fields["reviewer"].choices[1:]
        if scope.model_hidden:  # the stop switch: no filter or sort by what the model said
            for name in ("predicted_label", "min_confidence", "max_confidence"):
                del self.fields[name]
            self.fields["sort"].choices = [
                (s, label) for s, label in self.fields["sort"].choices if "confidence" not in s
            ]

    def filters(self) -> ItemFilters:
        data = self.cleaned_data
        return ItemFilters(
            state=data["state"],
            gold_label=data["gold_label"],
            predicted_label=data.get("predicted_label", ""),
            min_confidence=data.get("min_confidence"),
            max_confidence=data.get("max_confidence"),
            strategy=data["strategy"],
            reviewer_id=data["reviewer"],
            disagreement=data["disagreement"],
            flagged=data["flagged"],
            observed_from=data["observed_from"],
            observed_to=data["observed_to"],
            reviewed_from=data["reviewed_from"],
            reviewed_to=data["reviewed_to"],
        )

    def add_search_errors(self, problem: ItemSearchInvalid) -> None:
        for name, message in problem.errors.items():
            self.add_error(name if name in self.fields else None, message)

    def error_list(self) -> list[str]:
        """Each problem as one sentence that names the field, for the page."""
        return [
            f"{self.fields[name].label if name in self.fields else 'Filters'}: {message}"
            for name, messages in self.errors.items()
            for message in messages
        ]


# The sortable columns: header text and the sort each one orders by (a second click reverses it).
SORTABLE_COLUMNS = (("Item", "id"), ("Prediction", "confidence"), ("Observed", "observed"))


def sort_headers(current: str) -> dict[str, dict[str, str]]:
    """Column → its header link's sort and its aria-sort, for the table (no logic in the template)."""
    headers = {}
    for title, key in SORTABLE_COLUMNS:
        if current == key:
            headers[title] = {"sort": f"-{key}", "aria_sort": "ascending"}
        elif current == f"-{key}":
            headers[title] = {"sort": key, "aria_sort": "descending"}
        else:
            headers[title] = {"sort": key, "aria_sort": ""}
    return headers


@require_GET
@login_required
def item_list(request: HttpRequest, dataset_id: int) -> HttpResponse:
    """GET with the form's fields: one page of the dataset's items (400 with the problems named, and no rows)."""
    scope = item_list_scope_for_user(user=request.user, dataset_id=dataset_id)
    form = ItemListForm(request.GET, scope=scope)
    page: ItemPage | None = None
    if form.is_valid():
        try:
            page = items_search_for_user(
                user=request.user,
                dataset_id=dataset_id,
                filters=form.filters(),
                sort=form.cleaned_data["sort"] or "id",
                after=form.cleaned_data["after"] or None,
                before=form.cleaned_data["before"] or None,
                limit=form.cleaned_data["limit"],
                scope=scope,
            )
        except ItemSearchInvalid as problem:
            form.add_search_errors(problem)
    if page is not None:
        data_accesses_record(user=request.user, items=page.items, purpose=ReadPurpose.ITEM_LIST)
    context = {
        "dataset": scope.dataset,
        "form": form,
        "page": page,
        "errors": form.error_list(),
        "headers": sort_headers(page.sort if page else "id"),
        "own_only": scope.own_only,
        "model_hidden": scope.model_hidden,
        # The history page is the auditor's (governance.item_history): others see the item's id only.
        "links_history": has_role(request.user, Role.AUDITOR),
    }
    template = "annotations/item_list.html#results" if request.htmx else "annotations/item_list.html"
    return render(request, template, context, status=200 if page is not None else 400)
