"""The adjudication page: one disputed item at a time, every answer side by side, a decision with a reason."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from annotations.adjudication import adjudication_submit, item_answers
from annotations.models import Dataset, LabelClass
from annotations.queue import QueuedItem, adjudication_next_item
from annotations.selectors import dataset_get_for_user, item_get_for_user
from annotations.views import _card_context, _label_classes
from governance.audit import ReadPurpose, data_access_record
from workflow_site.access import Role

ADJUDICATE_ROLES = (Role.ADJUDICATOR,)


def _render(
    request: HttpRequest, dataset: Dataset, queued: QueuedItem | None, labels: list[LabelClass], error: str = ""
) -> HttpResponse:
    context = _card_context(dataset, queued, error, labels, reviewer=request.user)
    if queued is not None:
        data_access_record(
            user=request.user, item=queued.item, purpose=ReadPurpose.REVIEW_CARD, served_by=queued.strategy
        )
        context["answers"] = item_answers(item=queued.item)
        # Adjudicators review too: the stop switch hides the model's output from them as well.
        context["prediction_hidden"] = dataset.model_output_off
    template = "annotations/adjudication_page.html#decision" if request.htmx else "annotations/adjudication_page.html"
    return render(request, template, context, status=400 if error and not request.htmx else 200)


@require_GET
@login_required
def adjudication_page(request: HttpRequest, dataset_id: int) -> HttpResponse:
    """The next item awaiting adjudication, leased to this adjudicator (never one they answered)."""
    dataset = dataset_get_for_user(user=request.user, pk=dataset_id, roles=ADJUDICATE_ROLES)
    queued = adjudication_next_item(dataset=dataset, adjudicator=request.user)
    return _render(request, dataset, queued, _label_classes(dataset))


@require_POST
@login_required
def adjudication_submit_view(request: HttpRequest, dataset_id: int, item_id: int) -> HttpResponse:
    """Record the decision, then show the next disputed item (or the refusal, on the same item)."""
    item = item_get_for_user(user=request.user, pk=item_id, roles=ADJUDICATE_ROLES, related=())
    dataset = item.dataset
    if dataset.pk != dataset_id:
        return HttpResponse("Item does not belong to this dataset.", status=400)
    labels = _label_classes(dataset)
    error = ""
    label = next((lc for lc in labels if lc.name == request.POST.get("label", "")), None)
    try:
        if label is None:
            raise ValidationError({"label": "Pick the label you decide on (number keys)."})
        adjudication_submit(
            item_id=item.pk, adjudicator=request.user, label=label, reason=request.POST.get("reason", "")
        )
    except ValidationError as exc:
        error = f"Your decision for item {item.external_id} was not saved: " + " ".join(exc.messages)
    if not request.htmx:
        if error:
            messages.error(request, error)
        return redirect("annotations:adjudicate", dataset_id=dataset.pk)
    queued = adjudication_next_item(dataset=dataset, adjudicator=request.user)
    return _render(request, dataset, queued, labels, error)
