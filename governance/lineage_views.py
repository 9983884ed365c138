"""The lineage page (governance/lineage.py): one template for every kind of start node, and the same data as JSON."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from governance.lineage import lineage_for_user


@require_GET
@login_required
def lineage_view(request: HttpRequest, kind: str, pk: int) -> HttpResponse:
    # No data access is logged: the page shows no item's feature values (the item history does, and logs it).
    lineage = lineage_for_user(user=request.user, kind=kind, pk=pk)
    if request.GET.get("format") == "json":
        return JsonResponse(lineage.as_json(), encoder=DjangoJSONEncoder, json_dumps_params={"indent": 1})
    directions = [
        ("up", "Up: where it came from", lineage.up),
        ("down", "Down: what it went into", lineage.down),
    ]
    context = {"lineage": lineage, "dataset": lineage.dataset, "directions": directions}
    return render(request, "governance/lineage.html", context)
