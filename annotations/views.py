"""Annotation pages: home, dataset overview, import, and the review loop."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_GET, require_http_methods

from annotations.forms import ImportForm
from annotations.guidelines import guideline_current, guideline_render
from annotations.imports import full_report_path, import_batch_upload
from annotations.models import Dataset, Feature, Item, LabelClass, Review
from annotations.prediction_tie import prediction_tie
from annotations.queue import QueuedItem, queue_next_item
from annotations.selectors import (
    batch_get,
    dataset_get_for_user,
    dataset_open_count,
    dataset_queue_counts,
    datasets_for_user,
    datasets_queue_counts,
    import_batches_labelled_counts,
    item_get_for_user,
    reviewer_agreement_so_far,
    reviewer_answers_today,
    reviewer_left_count,
)
from annotations.services import ReviewAnswer, review_revise, review_submit
from governance.audit import ReadPurpose, data_access_record
from workflow_site.access import DATASET_READ_ROLES, REVIEW_ROLES, AnyUser, Role
from workflow_site.invisible_chars import reveal as reveal_hidden
from workflow_site.upload_limit import upload_over_limit

# Out-of-range values are marked in text, not only in colour.
_OUT_OF_RANGE_FLAGS = {"high": "▲ high", "low": "▼ low"}


@require_GET
@login_required
def home(request: HttpRequest) -> HttpResponse:
    mine = list(datasets_for_user(user=request.user))
    counts = datasets_queue_counts(datasets=mine)
    datasets = [(dataset, counts[dataset.pk]) for dataset in mine]
    return render(request, "annotations/home.html", {"datasets": datasets})


@require_GET
@login_required
def dataset_detail(request: HttpRequest, dataset_id: int) -> HttpResponse:
    dataset = dataset_get_for_user(user=request.user, pk=dataset_id, roles=DATASET_READ_ROLES)
    batches = list(dataset.import_batches.select_related("uploaded_by")[:20])
    return render(
        request,
        "annotations/dataset_detail.html",
        {
            "dataset": dataset,
            "counts": dataset_queue_counts(dataset=dataset),
            "features": dataset.features.all(),
            "label_classes": dataset.label_classes.all(),
            "batches": batches,
            "labelled_at_import": import_batches_labelled_counts(batches=batches),
        },
    )


@require_http_methods(["GET", "POST"])
@login_required
def import_upload(request: HttpRequest, dataset_id: int) -> HttpResponse:
    """POST: store the file and queue its import, then show the batch page (progress, then the report).

    The file is streamed to disk in chunks, never read whole into memory, and
    the import runs in a worker: the request takes as long as the upload.
    """
    dataset = dataset_get_for_user(user=request.user, pk=dataset_id, roles=(Role.MODEL_ADMIN,))
    form = ImportForm(request.POST or None, request.FILES or None)
    context = {
        "dataset": dataset,
        "form": form,
        "features": dataset.features.all(),
        "label_classes": dataset.label_classes.all(),
    }
    if request.method == "POST" and (too_big := upload_over_limit(request)):
        form.is_valid()
        form.errors["file"] = form.error_class([too_big])  # not "this field is required": say why it is missing
    elif request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        if upload.size > settings.IMPORT_MAX_BYTES:
            form.add_error("file", f"The file is {upload.size:,} bytes; the limit is {settings.IMPORT_MAX_BYTES:,}.")
        else:
            batch = import_batch_upload(
                dataset=dataset,
                user=request.user,
                file_name=upload.name,
                chunks=upload.chunks(),
                purpose=form.cleaned_data["purpose"],
            )
            return redirect("annotations:batch_detail", dataset_id=dataset.pk, batch_id=batch.pk)
    status = 400 if request.method == "POST" else 200
    return render(request, "annotations/import_upload.html", context, status=status)


@require_GET
@login_required
def batch_detail(request: HttpRequest, dataset_id: int, batch_id: int) -> HttpResponse:
    """The batch's status and progress (htmx polls the #status partial until it finishes), then its report."""
    dataset = dataset_get_for_user(user=request.user, pk=dataset_id, roles=(Role.MODEL_ADMIN, Role.AUDITOR))
    batch = batch_get(dataset=dataset, pk=batch_id)
    context = {
        "dataset": dataset,
        "batch": batch,
        # <title> shows text only: hidden characters as plain ⟨U+XXXX⟩ markers.
        "title_file_name": reveal_hidden(batch.file_name),
        # Saved, but the broker could not be reached: the sweep sends it (said in words on the page).
        "not_sent": batch.status == batch.Status.QUEUED
        and batch.dispatched_at is None
        and (timezone.now() - batch.uploaded_at).total_seconds() > 10,
    }
    template = "annotations/batch_detail.html#status" if request.htmx else "annotations/batch_detail.html"
    return render(request, template, context)


@require_GET
@login_required
def batch_report_download(request: HttpRequest, dataset_id: int, batch_id: int) -> HttpResponse:
    """The full row-level report of a rejected import, as CSV (the page shows the first problems)."""
    dataset = dataset_get_for_user(user=request.user, pk=dataset_id, roles=(Role.MODEL_ADMIN, Role.AUDITOR))
    batch = batch_get(dataset=dataset, pk=batch_id)
    path = full_report_path(batch.pk)
    if not batch.is_rejected or not path.exists():
        raise Http404("This import has no full report: only a rejected file has one.")
    name = f"import-{batch.pk}-report.csv"
    return FileResponse(path.open("rb"), as_attachment=True, filename=name, content_type="text/csv; charset=utf-8")


def _label_classes(dataset: Dataset) -> list[LabelClass]:
    """The dataset's label classes in schema order, read once per request (the answer and the card share them).

    Ordered by position alone: the model's default ordering starts with the dataset's
    name, which costs a join and orders nothing within one dataset."""
    return list(dataset.label_classes.order_by("position"))


def _render_card(
    request: HttpRequest,
    template: str,
    dataset: Dataset,
    queued: QueuedItem | None,
    error: str = "",
    *,
    label_classes: list[LabelClass] | None = None,
    extra: dict[str, Any] | None = None,
) -> HttpResponse:
    """Render a card; the item shown is logged as read by this reviewer."""
    if queued is not None:
        data_access_record(
            user=request.user, item=queued.item, purpose=ReadPurpose.REVIEW_CARD, served_by=queued.strategy
        )
    if label_classes is None:
        label_classes = _label_classes(dataset)
    context = _card_context(dataset, queued, error, label_classes, reviewer=request.user)
    return render(request, template, {**context, **(extra or {})})


def _card_context(
    dataset: Dataset, queued: QueuedItem | None, error: str, label_classes: list[LabelClass], *, reviewer: AnyUser
) -> dict[str, Any]:
    context = {
        "dataset": dataset,
        "queued": queued,
        "error": error,
        "label_classes": label_classes,
        "open_count": dataset_open_count(dataset=dataset),
        "answers_today": reviewer_answers_today(dataset=dataset, reviewer=reviewer),
        # Blind review: the prediction (and which label is the model's) stays hidden until answered.
        "prediction_hidden": queued is not None and queued.blind,
        "left_for_you": None,
    }
    if dataset.overlap > 1:  # open items this reviewer already answered are not left for them
        context["left_for_you"] = reviewer_left_count(
            dataset=dataset, reviewer=reviewer, open_count=context["open_count"]
        )
    if queued is not None:
        item: Item = queued.item
        context.update(_item_data_context(dataset, item))
        probabilities = item.predicted_probabilities or {}
        context["probabilities"] = [(label, probabilities.get(label.name)) for label in context["label_classes"]]
        context["tie"] = _tie(item, context["label_classes"])
        if item.lease_expires_at is not None:
            context["lease_seconds_left"] = max(0, int((item.lease_expires_at - timezone.now()).total_seconds()))
    return context


def _item_data_context(dataset: Dataset, item: Item) -> dict[str, Any]:
    """What the card, the reveal and the adjudication page show of an item's data (includes/item_data.html):
    table rows with out-of-range flags, and free-text features as blocks of their own."""
    rows, texts = [], []
    for feature in dataset.features.all():
        value = item.values.get(feature.name)
        if feature.dtype == Feature.Dtype.TEXT:  # a note: its own block, line breaks kept
            texts.append({"feature": feature, "value": value})
            continue
        direction = feature.out_of_range_direction(value)
        rows.append(
            {"feature": feature, "value": value, "out_of_range": direction, "flag": _OUT_OF_RANGE_FLAGS.get(direction)}
        )
    return {"rows": rows, "texts": texts, "out_of_range_count": sum(1 for row in rows if row["out_of_range"])}


def _tie(item: Item, label_classes: list[LabelClass]) -> tuple[tuple[LabelClass | str, float], ...] | None:
    """The top two (label, probability) pairs when the model cannot choose between them, else None.

    The rule is annotations/prediction_tie.py's, on the item's stored probabilities: the same one
    review_submit applies, so a card that names no label as the model's records no shown label."""
    tied = prediction_tie(item.predicted_probabilities)
    if tied is None:
        return None
    by_name = {label.name: label for label in label_classes}
    return tuple((by_name.get(name, name), p) for name, p in tied)


@require_GET
@login_required
def review_page(request: HttpRequest, dataset_id: int) -> HttpResponse:
    dataset = dataset_get_for_user(user=request.user, pk=dataset_id, roles=REVIEW_ROLES)
    queued = queue_next_item(dataset=dataset, reviewer=request.user)
    if request.htmx:
        return _render_card(request, "annotations/review_page.html#card", dataset, queued)
    # The whole page also carries the guideline in force, opened with G in a dialog (the card
    # swaps after each answer leave it in place, so it is read once per page, not per answer).
    guideline = guideline_current(dataset)
    agreed, compared = reviewer_agreement_so_far(dataset=dataset, reviewer=request.user)
    extra = {
        "guideline": guideline,
        "guideline_html": guideline_render(guideline.text) if guideline else None,
        "agreement_so_far": (agreed, compared),
    }
    return _render_card(request, "annotations/review_page.html", dataset, queued, extra=extra)


@require_http_methods(["GET", "POST"])
@login_required
def review_submit_view(request: HttpRequest, dataset_id: int, item_id: int) -> HttpResponse:
    """POST: record the answer, then show the next card. GET (a reload, or the URL from history
    after a plain post) changes nothing and goes back to the review page, which shows the item
    the reviewer still holds; a blank 405 would strand them."""
    if request.method == "GET":
        return redirect(reverse("annotations:review", args=[dataset_id]))
    # Only the dataset: review_submit reads the item again, under its lock, for what it needs.
    item = item_get_for_user(user=request.user, pk=item_id, roles=REVIEW_ROLES, related=())
    dataset = item.dataset
    if item.dataset_id != dataset_id:
        return HttpResponse("Item does not belong to this dataset.", status=400)
    label_classes = _label_classes(dataset)
    error = ""
    review = None
    try:
        answer = _parse_answer(request, label_classes)
        review = review_submit(item_id=item.pk, reviewer=request.user, answer=answer)
    except ValidationError as exc:
        error = _refused_text(request, label_classes, item, exc)
    if review is not None and review.mode == Review.Mode.BLIND and not dataset.model_output_off:
        # Answered blind: now show the prediction, and let them keep or revise (both answers are kept).
        # Not while the model's output is switched off (the stop switch): then nothing is ever revealed.
        return _render_reveal(request, dataset, review, label_classes)
    if not request.htmx:
        if error:
            messages.error(request, error)
        return redirect(reverse("annotations:review", args=[dataset.pk]))
    queued = queue_next_item(dataset=dataset, reviewer=request.user)
    undo = review if review is not None and review.decision != Review.Decision.SKIP else None
    return _render_card(
        request,
        "annotations/review_page.html#card",
        dataset,
        queued,
        error,
        label_classes=label_classes,
        extra={"undo_review": undo},
    )


def _render_reveal(
    request: HttpRequest, dataset: Dataset, review: Review, label_classes: list[LabelClass], error: str = ""
) -> HttpResponse:
    """The card after a blind answer: what they said, what the model predicts, keep or change."""
    item = Item.objects.select_related("predicted_label").get(pk=review.item_id)
    labels = {label.pk: label for label in label_classes}
    probabilities = item.predicted_probabilities or {}
    context = {
        "dataset": dataset,
        "reveal": review,
        "reveal_item": item,
        "your_label": labels.get(review.label_id),
        "label_classes": label_classes,
        "probabilities": [(label, probabilities.get(label.name)) for label in label_classes],
        "error": error,
        # The data again beside the prediction: the revision is made on the evidence, not on the bars alone.
        **_item_data_context(dataset, item),
    }
    if request.htmx:
        return render(request, "annotations/review_page.html#card", context)
    guideline = guideline_current(dataset)
    context.update(guideline=guideline, guideline_html=guideline_render(guideline.text) if guideline else None)
    return render(request, "annotations/review_page.html", context)


@require_http_methods(["POST"])
@login_required
def review_revise_view(request: HttpRequest, dataset_id: int, review_id: int) -> HttpResponse:
    """Keep or revise an answer given blind (action keep / submit / uncertain), or undo the last answer (undo).

    Then the next card: for an undo, the same item again, held for the reviewer.
    """
    dataset = dataset_get_for_user(user=request.user, pk=dataset_id, roles=REVIEW_ROLES)
    label_classes = _label_classes(dataset)
    action = request.POST.get("action", "")
    error = ""
    review = None
    try:
        original = Review.objects.select_related("item", "label").filter(pk=review_id, reviewer=request.user).first()
        if original is None or original.item.dataset_id != dataset.pk:
            raise ValidationError("You have no such answer in this dataset.")
        if action == "undo":
            review_revise(review_id=original.pk, reviewer=request.user, answer=None)
        elif action == "keep":
            review = original  # kept as it was: the next card still offers to undo it
        else:
            answer = _parse_answer(request, label_classes)
            unchanged = answer.flagged == original.flagged and (
                (answer.uncertain and original.decision == Review.Decision.UNCERTAIN)
                or (answer.label is not None and answer.label.pk == original.label_id)
            )
            # The same answer again is a keep, not a revision; the same label with the follow-up flag
            # set or cleared is a revision (a review is never edited, so the new flag needs a new review).
            review = (
                original if unchanged else review_revise(review_id=original.pk, reviewer=request.user, answer=answer)
            )
    except ValidationError as exc:
        error = "Your change was not saved: " + " ".join(exc.messages)
    if not request.htmx:
        if error:
            messages.error(request, error)
        return redirect(reverse("annotations:review", args=[dataset.pk]))
    queued = queue_next_item(dataset=dataset, reviewer=request.user)
    return _render_card(
        request,
        "annotations/review_page.html#card",
        dataset,
        queued,
        error,
        label_classes=label_classes,
        extra={"undo_review": review},
    )


def _refused_text(request: HttpRequest, label_classes: list[LabelClass], item: Item, exc: ValidationError) -> str:
    """The error for a refused answer: which item, what the answer was, and why (the service's words).

    The card that shows it is already the next item's, so the failed item is named."""
    if request.POST.get("action") == "skip":
        what = "Your skip"
    elif request.POST.get("action") == "uncertain":
        what = "Your 'uncertain'"
    else:
        label = next((lc for lc in label_classes if lc.name == request.POST.get("label")), None)
        what = f"Your answer ({label})" if label is not None else "Your answer"
    reason = " ".join(exc.messages)
    try:
        held_until = parse_datetime(request.POST.get("held_until", ""))
    except ValueError:
        held_until = None
    if held_until is not None and held_until <= timezone.now() and item.leased_to_id != request.user.pk:
        ended = timezone.localtime(held_until)
        reason = f"your hold on it expired at {ended:%H:%M %Z} and it went to another reviewer. {reason}"
    return f"{what} for item {item.external_id} was not saved: {reason}"


def _parse_answer(request: HttpRequest, label_classes: list[LabelClass]) -> ReviewAnswer:
    """The answer in the POST; `label_classes` are the item's dataset's (the label is looked up among them)."""
    shown_raw = request.POST.get("shown_prediction", "")
    try:
        shown = int(shown_raw) if shown_raw else None
    except ValueError as exc:
        raise ValidationError("The form was damaged (shown_prediction is not a number). Reload the page.") from exc
    reason = request.POST.get("reason", "")
    extra = {"reason_code": request.POST.get("reason_code", ""), "flagged": request.POST.get("flagged") == "on"}
    if request.POST.get("action") == "skip":
        return ReviewAnswer(label=None, shown_prediction_id=shown, reason=reason, **extra)
    if request.POST.get("action") == "uncertain":
        return ReviewAnswer(label=None, shown_prediction_id=shown, reason=reason, uncertain=True, **extra)
    label_name = request.POST.get("label", "")
    if not label_name:
        keys = min(len(label_classes), 9)
        key_text = "number key 1" if keys <= 1 else f"number keys 1–{keys}"
        raise ValidationError(f"Pick a label ({key_text}) before submitting, or skip with S.")
    label = next((lc for lc in label_classes if lc.name == label_name), None)  # names are unique per dataset
    if label is None:
        raise ValidationError(f"Unknown label {label_name!r} for this dataset.")
    return ReviewAnswer(label=label, shown_prediction_id=shown, reason=reason, **extra)
