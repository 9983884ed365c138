"""The lineage page (governance/lineage.py): one template for every kind of start node, and the same data as JSON."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from governance.lineage import lineage_document, lineage_for_user
from governance.lineage_exports import LINEAGE_EXPORT_FORMATS, lineage_export_chunks, lineage_export_open
from models_app.export_formats import ExportFormat


@require_GET
@login_required
def lineage_view(request: HttpRequest, kind: str, pk: int) -> HttpResponse:
    # No data access is logged: the page shows no item's feature values (the item history does, and logs it).
    lineage = lineage_for_user(user=request.user, kind=kind, pk=pk)
    if request.GET.get("format") == "json":
        # The API (/api/lineage/…) gives this same document (lineage_document), as the exports hash its nodes.
        return JsonResponse(lineage_document(lineage), json_dumps_params={"indent": 1})
    directions = [
        ("up", "Up: where it came from", lineage.up),
        ("down", "Down: what it went into", lineage.down),
    ]
    context = {"lineage": lineage, "lineage_kind": kind, "dataset": lineage.dataset, "directions": directions}
    return render(request, "governance/lineage.html", context)


@require_GET
@login_required
def lineage_export_view(request: HttpRequest, kind: str, pk: int, fmt: str) -> HttpResponse:
    """The lineage's nodes as a CSV or JSONL download; recorded (audit.exported) before it is sent."""
    try:
        export_format = ExportFormat(fmt)
    except ValueError:
        raise Http404(f"No lineage export “{fmt}”: CSV or JSONL.") from None
    if export_format not in LINEAGE_EXPORT_FORMATS:
        raise Http404(f"Lineage exports are CSV or JSONL, not {fmt}.")
    export = lineage_export_open(user=request.user, kind=kind, pk=pk, fmt=export_format)
    response = StreamingHttpResponse(lineage_export_chunks(export), content_type=export_format.content_type)
    response["Content-Disposition"] = f'attachment; filename="{export.file_name}"'
    response["Cache-Control"] = "no-store"
    response["X-Loupe-Export-Event"] = str(export.event_seq)
    return response
