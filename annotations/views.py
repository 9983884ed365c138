"""Annotation pages: home, dataset overview, import, and the review loop."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from annotations.forms import ImportForm
from annotations.models import Dataset, Item, LabelClass
from annotations.queue import QueuedItem, queue_next_item
from annotations.selectors import (
    batch_get,
    dataset_get_for_user,
    dataset_open_count,
    dataset_queue_counts,
    datasets_for_user,
    item_get_for_user,
)
from annotations.services import ImportRejected, ReviewAnswer, import_batch_create, review_submit
from governance.audit import ReadPurpose, data_access_record
from workflow_site.access import DATASET_READ_ROLES, REVIEW_ROLES, Role

# Out-of-range values are marked in text, not only in colour.
_OUT_OF_RANGE_FLAGS = {"high": "▲ high", "low": "▼ low"}


@require_GET
@login_required
def home(request: HttpRequest) -> HttpResponse:
    datasets = [(dataset, dataset_queue_counts(dataset=dataset)) for dataset in datasets_for_user(user=request.user)]
    return render(request, "annotations/home.html", {"datasets": datasets})


@require_GET
@login_required
def dataset_detail(request: HttpRequest, dataset_id: int) -> HttpResponse:
    dataset = dataset_get_for_user(user=request.user, pk=dataset_id, roles=DATASET_READ_ROLES)
    return render(
        request,
        "annotations/dataset_detail.html",
        {
            "dataset": dataset,
            "counts": dataset_queue_counts(dataset=dataset),
            "features": dataset.features.all(),
            "label_classes": dataset.label_classes.all(),
            "batches": dataset.import_batches.select_related("uploaded_by")[:20],
        },
    )


@require_http_methods(["GET", "POST"])
@login_required
def import_upload(request: HttpRequest, dataset_id: int) -> HttpResponse:
    dataset = dataset_get_for_user(user=request.user, pk=dataset_id, roles=(Role.MODEL_ADMIN,))
    form = ImportForm(request.POST or None, request.FILES or None)
    context = {
        "dataset": dataset,
        "form": form,
        "features": dataset.features.all(),
        "label_classes": dataset.label_classes.all(),
        "report": None,
    }
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        if upload.size > settings.IMPORT_MAX_BYTES:
            form.add_error("file", f"The file is {upload.size:,} bytes; the limit is {settings.IMPORT_MAX_BYTES:,}.")
        else:
            try:
                batch = import_batch_create(
                    dataset=dataset,
                    user=request.user,
                    file_name=upload.name,
                    data=upload.read(),
                    purpose=form.cleaned_data["purpose"],
                )
            except ImportRejected as rejected:
                context["report"] = rejected.result
                context["rejected_batch"] = rejected.batch
                return render(request, "annotations/import_upload.html", context, status=400)
            return redirect("annotations:batch_detail", dataset_id=dataset.pk, batch_id=batch.pk)
    status = 400 if request.method == "POST" else 200
    return render(request, "annotations/import_upload.html", context, status=status)


@require_GET
@login_required
def batch_detail(request: HttpRequest, dataset_id: int, batch_id: int) -> HttpResponse:
    dataset = dataset_get_for_user(user=request.user, pk=dataset_id, roles=(Role.MODEL_ADMIN, Role.AUDITOR))
    batch = batch_get(dataset=dataset, pk=batch_id)
    return render(request, "annotations/batch_detail.html", {"dataset": dataset, "batch": batch})


def _render_card(
    request: HttpRequest, template: str, dataset: Dataset, queued: QueuedItem | None, error: str = ""
) -> HttpResponse:
    """Render a card; the item shown is logged as read by this reviewer."""
    if queued is not None:
        data_access_record(user=request.user, item=queued.item, purpose=ReadPurpose.REVIEW_CARD)
    return render(request, template, _card_context(dataset, queued, error))


def _card_context(dataset: Dataset, queued: QueuedItem | None, error: str = "") -> dict[str, Any]:
    context = {
        "dataset": dataset,
        "queued": queued,
        "error": error,
        "label_classes": list(dataset.label_classes.all()),
        "open_count": dataset_open_count(dataset=dataset),
    }
    if queued is not None:
        item: Item = queued.item
        rows = []
        for feature in dataset.features.all():
            value = item.values.get(feature.name)
            direction = feature.out_of_range_direction(value)
            rows.append(
                {
                    "feature": feature,
                    "value": value,
                    "out_of_range": direction,
                    "flag": _OUT_OF_RANGE_FLAGS.get(direction),
                }
            )
        context["rows"] = rows
        context["out_of_range_count"] = sum(1 for row in rows if row["out_of_range"])
        probabilities = item.predicted_probabilities or {}
        context["probabilities"] = [(label, probabilities.get(label.name)) for label in context["label_classes"]]
    return context


@require_GET
@login_required
def review_page(request: HttpRequest, dataset_id: int) -> HttpResponse:
    dataset = dataset_get_for_user(user=request.user, pk=dataset_id, roles=REVIEW_ROLES)
    queued = queue_next_item(dataset=dataset, reviewer=request.user)
    template = "annotations/review_page.html#card" if request.htmx else "annotations/review_page.html"
    return _render_card(request, template, dataset, queued)


@require_POST
@login_required
def review_submit_view(request: HttpRequest, dataset_id: int, item_id: int) -> HttpResponse:
    item = item_get_for_user(user=request.user, pk=item_id, roles=REVIEW_ROLES)
    dataset = item.dataset
    if item.dataset_id != dataset_id:
        return HttpResponse("Item does not belong to this dataset.", status=400)
    error = ""
    try:
        answer = _parse_answer(request, dataset)
        review_submit(item_id=item.pk, reviewer=request.user, answer=answer)
    except ValidationError as exc:
        error = " ".join(exc.messages)
    if not request.htmx:
        if error:
            messages.error(request, error)
        return redirect(reverse("annotations:review", args=[dataset.pk]))
    queued = queue_next_item(dataset=dataset, reviewer=request.user)
    return _render_card(request, "annotations/review_page.html#card", dataset, queued, error)


def _parse_answer(request: HttpRequest, dataset: Dataset) -> ReviewAnswer:
    shown_raw = request.POST.get("shown_prediction", "")
    try:
        shown = int(shown_raw) if shown_raw else None
    except ValueError as exc:
        raise ValidationError("The form was damaged (shown_prediction is not a number). Reload the page.") from exc
    reason = request.POST.get("reason", "")
    if request.POST.get("action") == "skip":
        return ReviewAnswer(label=None, shown_prediction_id=shown, reason=reason)
    label_name = request.POST.get("label", "")
    if not label_name:
        raise ValidationError("Pick a label (number keys 1–9) before submitting, or skip with S.")
    try:
        label = LabelClass.objects.get(dataset=dataset, name=label_name)
    except LabelClass.DoesNotExist as exc:
        raise ValidationError(f"Unknown label {label_name!r} for this dataset.") from exc
    return ReviewAnswer(label=label, shown_prediction_id=shown, reason=reason)
