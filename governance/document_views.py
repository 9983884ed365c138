"""Model cards and datasheets (governance/model_cards.py): printable pages and the same facts as JSON."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from governance.model_cards import datasheet, model_card
from governance.narratives import narrative_can_write
from models_app.selectors import model_version_get_for_user, snapshot_get_for_user


def _as_json(request: HttpRequest) -> bool:
    return request.GET.get("format") == "json"


@require_GET
@login_required
def model_card_view(request: HttpRequest, model_version_id: int) -> HttpResponse:
    version = model_version_get_for_user(user=request.user, pk=model_version_id)
    card = model_card(version)
    if _as_json(request):
        return JsonResponse(card, encoder=DjangoJSONEncoder, json_dumps_params={"indent": 1})
    context = {
        "card": card,
        "version": version,
        "dataset": version.dataset,
        "narrative": card["narrative"],
        "can_write": narrative_can_write(request.user, version.dataset),
        "edit_url": reverse("governance:model_card_narrative", args=[version.pk]),
    }
    return render(request, "governance/model_card.html", context)


@require_GET
@login_required
def datasheet_view(request: HttpRequest, snapshot_id: int) -> HttpResponse:
    snapshot = snapshot_get_for_user(user=request.user, pk=snapshot_id)
    sheet = datasheet(snapshot)
    if _as_json(request):
        return JsonResponse(sheet, encoder=DjangoJSONEncoder, json_dumps_params={"indent": 1})
    context = {
        "sheet": sheet,
        "snapshot": snapshot,
        "dataset": snapshot.dataset,
        "narrative": sheet["narrative"],
        "can_write": narrative_can_write(request.user, snapshot.dataset),
        "edit_url": reverse("governance:datasheet_narrative", args=[snapshot.pk]),
    }
    return render(request, "governance/datasheet.html", context)
