"""The queue settings page: model admins change a dataset's strategy, audit slice, overlap, blind share and
reason codes."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from annotations.models import QueueStrategy
from annotations.oversight import dataset_model_output_switch
from annotations.retention import MAX_RETENTION_DAYS, retention_days_of
from annotations.selectors import dataset_get_for_user
from annotations.workbench import MAX_OVERLAP, QueueSettings, dataset_queue_settings_set, queue_priorities_dispatch
from workflow_site.access import Role, has_role


class QueueSettingsForm(forms.Form):
    strategy = forms.ChoiceField(label="Which items first", choices=QueueStrategy.choices)
    audit_slice_percent = forms.IntegerField(
        label="Random audit slice (% of served items)",
        min_value=0,
        max_value=100,
        help_text="Picked uniformly at random whatever the strategy, so the model can be judged without the "
        "queue's bias. 10% is the default.",
    )
    audit_slice_off_reason = forms.CharField(
        label="Why the audit slice is off (required when it is 0%)",
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    overlap = forms.IntegerField(
        label="Reviewers per item (overlap)",
        min_value=1,
        max_value=MAX_OVERLAP,
        help_text="Agreeing answers set the gold label; disagreeing ones, or an 'uncertain', go to an adjudicator.",
    )
    blind_percent = forms.IntegerField(
        label="Blind review (% of served items)",
        min_value=0,
        max_value=100,
        help_text="Served without the model's prediction until the reviewer answers (guards against rubber-stamping).",
    )
    reason_codes = forms.CharField(
        label="Reason codes for corrections (one per line: code: text)",
        required=False,
        max_length=10_000,
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false"}),
        help_text="In the order the review card lists them, e.g. “margin: Irregular margin missed”. A code is "
        "lower-case letters, digits, - or _. With codes set, a correction must pick one; empty: none asked. "
        "Reviews already given keep the code they recorded.",
    )

    def clean_reason_codes(self) -> list[dict[str, str]] | None:
        """The lines as [{code, text}]; None when the form did not send the field at all (an older form, a
        script), which keeps the dataset's codes. The codes themselves are checked by the service."""
        if "reason_codes" not in self.data:
            return None
        codes = []
        for number, line in enumerate(self.cleaned_data["reason_codes"].splitlines(), start=1):
            if not line.strip():
                continue
            code, colon, text = line.partition(":")
            if not colon:
                raise ValidationError(f"Line {number} ({line.strip()!r}): write each reason as code: text.")
            codes.append({"code": code.strip(), "text": text.strip()})
        return codes


def reason_codes_lines(codes: list[dict[str, str]]) -> str:
    """The codes as the form's text: one “code: text” per line."""
    return "\n".join(f"{entry['code']}: {entry['text']}" for entry in codes)


def _initial(current: QueueSettings) -> dict[str, Any]:
    return {**current.__dict__, "reason_codes": reason_codes_lines(current.reason_codes or [])}


@require_http_methods(["GET", "POST"])
@login_required
def workbench_settings_page(request: HttpRequest, dataset_id: int) -> HttpResponse:
    """GET (model admins, auditors): the settings in force. POST (model admins): change them."""
    roles = (Role.MODEL_ADMIN, Role.AUDITOR) if request.method == "GET" else (Role.MODEL_ADMIN,)
    dataset = dataset_get_for_user(user=request.user, pk=dataset_id, roles=roles)
    current = QueueSettings.of(dataset)
    form = QueueSettingsForm(request.POST or None, initial=_initial(current))
    if request.method == "POST" and form.is_valid():
        try:
            rescore = dataset_queue_settings_set(
                dataset_id=dataset.pk, user=request.user, wanted=QueueSettings(**form.cleaned_data)
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                # reason_codes[2] and the like: the service names the entry, the form has one field for all.
                name = "reason_codes" if field.startswith("reason_codes") else field
                form.add_error(name if name in form.fields else None, errors)
        else:
            messages.success(request, "Queue settings saved.")
            if rescore and not queue_priorities_dispatch(dataset_id=dataset.pk):
                messages.error(
                    request,
                    "The new strategy is saved, but the worker could not be reached to reorder the open items: "
                    "they keep their old order until you save again.",
                )
            elif rescore:
                messages.info(request, "The open items are being reordered under the new strategy in the background.")
            return redirect("annotations:workbench_settings", dataset_id=dataset.pk)
    return settings_page_render(
        request, dataset, form=form, current=current, status=400 if request.method == "POST" else 200
    )


def settings_page_render(
    request: HttpRequest,
    dataset: Any,
    *,
    form: QueueSettingsForm | None = None,
    current: QueueSettings | None = None,
    side_errors: dict[str, str] | None = None,
    posted: dict[str, str] | None = None,
    status: int = 200,
) -> HttpResponse:
    """The settings page. `side_errors`: a refused side form (stop switch, retention period, legal hold) by
    name, its error shown beside its field with what was typed (`posted`), answered 400."""
    current = current or QueueSettings.of(dataset)
    if form is None:
        form = QueueSettingsForm(initial=_initial(current))
    return render(
        request,
        "annotations/workbench_settings.html",
        {
            "dataset": dataset,
            "form": form,
            "current": current,
            "can_change": has_role(request.user, Role.MODEL_ADMIN),
            "retention_days": retention_days_of(dataset),
            "max_retention_days": MAX_RETENTION_DAYS,
            "side_errors": side_errors or {},
            "posted": posted or {},
        },
        status=status,
    )


@require_POST
@login_required
def model_output_switch_view(request: HttpRequest, dataset_id: int) -> HttpResponse:
    """The stop switch (annotations/oversight.py): model admins switch the model's output off or back on."""
    dataset = dataset_get_for_user(user=request.user, pk=dataset_id, roles=(Role.MODEL_ADMIN,))
    off = request.POST.get("model_output") == "off"
    try:
        dataset_model_output_switch(
            dataset_id=dataset.pk, user=request.user, off=off, reason=request.POST.get("reason", "")
        )
    except ValidationError as exc:
        # Beside the reason field, with what was typed: the page is long and a message at its top goes unseen.
        return settings_page_render(
            request,
            dataset,
            side_errors={"model_output": " ".join(exc.messages)},
            posted={"reason": request.POST.get("reason", "")},
            status=400,
        )
    else:
        messages.success(
            request,
            "The model's output is switched off: reviewers see no prediction, and items come in random order."
            if off
            else "The model's output is shown to reviewers again.",
        )
    return redirect("annotations:workbench_settings", dataset_id=dataset.pk)
