"""The labelling guideline page: read the version in force or an earlier one; model admins preview and publish."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from annotations.guidelines import (
    MAX_NOTE_CHARS,
    MAX_TEXT_CHARS,
    guideline_current,
    guideline_publish,
    guideline_render,
)
from annotations.models import GuidelineVersion
from annotations.selectors import dataset_get_for_user
from workflow_site.access import DATASET_READ_ROLES, Role


class GuidelineForm(forms.Form):
    text = forms.CharField(
        label="Guideline (Markdown)",
        widget=forms.Textarea(attrs={"rows": 18}),
        max_length=MAX_TEXT_CHARS,
        help_text="Headings (#), lists, **bold**, tables and links; no raw HTML or images.",
    )
    change_note = forms.CharField(label="What changed, for reviewers", required=False, max_length=MAX_NOTE_CHARS)


@require_http_methods(["GET", "POST"])
@login_required
def guideline_page(request: HttpRequest, dataset_id: int) -> HttpResponse:
    """GET (dataset members, auditors): the guideline in force, or ?version=N, and every version.

    POST (model admins): "preview" renders the text without saving; "publish"
    makes it the next version (annotations/guidelines.py) and comes back here.
    """
    roles = (Role.MODEL_ADMIN,) if request.method == "POST" else DATASET_READ_ROLES
    dataset = dataset_get_for_user(user=request.user, pk=dataset_id, roles=roles)
    versions = list(GuidelineVersion.objects.filter(dataset=dataset).select_related("published_by"))
    current = guideline_current(dataset)
    shown = current
    requested = request.GET.get("version", "")
    if requested:
        shown = next((v for v in versions if str(v.version) == requested), None)
    form = GuidelineForm(request.POST or None, initial={"text": current.text if current else ""})
    preview = None
    status = 200
    if request.method == "POST":
        if form.is_valid() and request.POST.get("action") == "preview":
            preview = guideline_render(form.cleaned_data["text"])
        elif form.is_valid():
            try:
                published = guideline_publish(
                    dataset=dataset,
                    user=request.user,
                    text=form.cleaned_data["text"],
                    change_note=form.cleaned_data["change_note"],
                )
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                messages.success(request, f"Guideline version {published.version} is published; reviews now record it.")
                return redirect("annotations:guideline", dataset_id=dataset.pk)
        status = 200 if preview is not None else 400
    context = {
        "dataset": dataset,
        "versions": versions,
        "current": current,
        "shown": shown,
        "shown_html": guideline_render(shown.text) if shown else None,
        "requested_missing": bool(requested) and shown is None,
        "form": form,
        "preview": preview,
    }
    return render(request, "annotations/guideline_page.html", context, status=status)
