"""The reviewer report page (issue 8, point 4): automation bias per reviewer, for model admins and auditors."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from annotations.reviewer_report import dataset_reviewer_report_for_user


@require_GET
@login_required
def reviewer_report_page(request: HttpRequest, dataset_id: int) -> HttpResponse:
    """GET: each reviewer's agreement with the model blind and shown, accept rate, times and flag."""
    report = dataset_reviewer_report_for_user(user=request.user, dataset_id=dataset_id)
    return render(request, "annotations/reviewer_report.html", {"dataset": report.dataset, "report": report})
