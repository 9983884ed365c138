"""The override-rate page (issue 10, point 6): how often reviewers overrule the model, week by week."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from annotations.override_rates import DEFAULT_WEEKS, MAX_WEEKS, dataset_override_rates_for_user


@require_GET
@login_required
def override_rates_page(request: HttpRequest, dataset_id: int) -> HttpResponse:
    """GET ?start=YYYY-MM-DD&end=YYYY-MM-DD (both optional): the rates per reviewer and per class.

    A period that does not parse or is too long is answered 400 with the error beside its field and
    the default period's figures below, so the page stays usable.
    """
    start, end = request.GET.get("start") or None, request.GET.get("end") or None
    errors: dict[str, list[str]] = {}
    try:
        rates = dataset_override_rates_for_user(user=request.user, dataset_id=dataset_id, start=start, end=end)
    except ValidationError as exc:
        errors = exc.message_dict
        rates = dataset_override_rates_for_user(user=request.user, dataset_id=dataset_id)
    context = {
        "dataset": rates.dataset,
        "rates": rates,
        "errors": errors,
        "asked": {"start": start or "", "end": end or ""},
        "default_weeks": DEFAULT_WEEKS,
        "max_weeks": MAX_WEEKS,
    }
    return render(request, "annotations/override_rates.html", context, status=400 if errors else 200)
