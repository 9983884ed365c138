"""Auditor exports as downloads (issue 10, point 9): events, signatures, checkpoints; CSV or JSONL."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.views.decorators.http import require_GET

from governance.audit_exports import EXPORT_FORMATS, AuditExportKind, audit_export_chunks, audit_export_open
from governance.forms import AuditFilterForm
from models_app.export_formats import ExportFormat
from workflow_site.access import Role, require_role


@require_GET
@login_required
def audit_export(request: HttpRequest, kind: str, fmt: str) -> HttpResponse:
    """Stream one export; the events take the audit page's filters and search from the query string."""
    require_role(request.user, Role.AUDITOR)
    try:
        export_kind, export_format = AuditExportKind(kind), ExportFormat(fmt)
    except ValueError:
        raise Http404(f"No audit export “{kind}.{fmt}”.") from None
    if export_format not in EXPORT_FORMATS:
        raise Http404(f"Audit exports are CSV or JSONL, not {fmt}.")
    form = AuditFilterForm(request.GET)
    if not form.is_valid():
        # An export says exactly what it covers: a filter that cannot be applied refuses it (nothing recorded).
        errors = " ".join(form.error_list())
        return HttpResponse(f"Nothing exported. {errors}\n", status=400, content_type="text/plain; charset=utf-8")
    export = audit_export_open(user=request.user, kind=export_kind, fmt=export_format, filters=form.to_filters())
    response = StreamingHttpResponse(audit_export_chunks(export), content_type=export_format.content_type)
    response["Content-Disposition"] = f'attachment; filename="{export.file_name}"'
    response["Cache-Control"] = "no-store"
    response["X-Loupe-Export-Event"] = str(export.event_seq)
    response["X-Loupe-Export-Bound"] = f"{export.bound_name}={export.up_to}"
    return response
