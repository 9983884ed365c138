"""The agreement page (issue 8, point 3): how far a dataset's reviewers agree, for model admins and auditors."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from annotations.agreement import dataset_agreement_for_user


@require_GET
@login_required
def agreement_page(request: HttpRequest, dataset_id: int) -> HttpResponse:
    """GET ?guideline_version=N (optional): the figures over the answers in force under that version, or all."""
    agreement = dataset_agreement_for_user(
        user=request.user, dataset_id=dataset_id, guideline_version=request.GET.get("guideline_version") or None
    )
    context = {"dataset": agreement.dataset, "agreement": agreement, "report": agreement.report}
    return render(request, "annotations/agreement_page.html", context)
