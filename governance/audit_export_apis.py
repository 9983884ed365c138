"""The auditor's downloads through the API (issue 10): the audit trail's exports and a lineage's.

The same files as the pages' download links (governance/export_views.py, lineage_views.py), from the same
services: recorded in the trail (`audit.exported`) before a byte is sent, streamed by key, CSV cells that a
spreadsheet would run as a formula neutralised, JSONL ending with a summary line (row count and the sha256
of every byte before it). The headers say which event recorded the export and, for the trail, up to where
it reaches. Kind and format are query parameters, as for a dataset's export (models_app/export_apis.py),
so a wrong one is a 400 naming the parameter.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.views import APIView

from governance.apis import AUDIT_FILTER_PARAMETERS
from governance.audit_exports import EXPORT_FORMATS, AuditExportKind, audit_export_chunks, audit_export_open
from governance.forms import AuditFilterForm
from governance.lineage import LINEAGE_ROLES
from governance.lineage_exports import LINEAGE_EXPORT_FORMATS, lineage_export_chunks, lineage_export_open
from governance.lineage_nodes import KINDS
from models_app.export_formats import ExportFormat
from workflow_site.access import Role, require_role
from workflow_site.api_schema import error_responses

_FILE_RESPONSES = {
    (200, "text/csv"): OpenApiResponse(OpenApiTypes.BINARY, description="CSV (formula-like cells neutralised)"),
    (200, "application/x-ndjson"): OpenApiResponse(
        OpenApiTypes.BINARY,
        description='JSON Lines, ending with {"summary": {...}}: the row count and the sha256 of every byte before it',
    ),
}
_HEADERS_WORDS = (
    " The response's X-Loupe-Export-Event header gives the seq of the audit.exported event that recorded it."
)


def _attachment(chunks: Iterator[bytes], *, fmt: ExportFormat, file_name: str, event_seq: int) -> StreamingHttpResponse:
    response = StreamingHttpResponse(chunks, content_type=fmt.content_type)
    response["Content-Disposition"] = f'attachment; filename="{file_name}"'
    response["Cache-Control"] = "no-store"
    response["X-Loupe-Export-Event"] = str(event_seq)
    return response


def _format_field(formats: tuple[ExportFormat, ...]) -> serializers.ChoiceField:
    # Not "format": DRF reads ?format= as a renderer choice.
    return serializers.ChoiceField(choices=[str(f) for f in formats], default=str(ExportFormat.CSV))


class AuditExportApi(APIView):
    """The audit trail's events (filtered like the audit page), its signatures or its checkpoints, as a file."""

    class InputSerializer(serializers.Serializer):
        kind = serializers.ChoiceField(
            choices=[str(k) for k in AuditExportKind],
            help_text="events (the audit page's filters apply), signatures (each checked against its record "
            "now) or checkpoints (as a third party verifies them); the last two are exported whole.",
        )
        file_format = _format_field(EXPORT_FORMATS)

    @extend_schema(
        parameters=[InputSerializer, *AUDIT_FILTER_PARAMETERS],
        responses={**_FILE_RESPONSES, **error_responses(400, 401, 403)},
        description="Auditors. Bounded when it is recorded (X-Loupe-Export-Bound: up_to_seq, up_to_id or "
        "up_to_tree_size), so the same export run again later gives the same rows." + _HEADERS_WORDS,
    )
    def get(self, request: Request):  # type: ignore[no-untyped-def]
        require_role(request.user, Role.AUDITOR)
        data = self.InputSerializer(data=request.query_params)
        data.is_valid(raise_exception=True)
        form = AuditFilterForm(request.query_params)
        if not form.is_valid():
            # An export says exactly what it covers: a filter that cannot be applied refuses it (nothing recorded).
            raise serializers.ValidationError({field: list(messages) for field, messages in form.errors.items()})
        export = audit_export_open(
            user=request.user,
            kind=AuditExportKind(data.validated_data["kind"]),
            fmt=ExportFormat(data.validated_data["file_format"]),
            filters=form.to_filters(),
        )
        response = _attachment(
            audit_export_chunks(export), fmt=export.fmt, file_name=export.file_name, event_seq=export.event_seq
        )
        response["X-Loupe-Export-Bound"] = f"{export.bound_name}={export.up_to}"
        return response


class LineageExportApi(APIView):
    """Every node of a record's lineage (as GET lineage/{kind}/{pk}/ gives it), one row each with its sha256."""

    class InputSerializer(serializers.Serializer):
        file_format = _format_field(LINEAGE_EXPORT_FORMATS)

    @extend_schema(
        parameters=[InputSerializer],
        responses={**_FILE_RESPONSES, **error_responses(400, 401, 403, 404)},
        description=f"`kind` is one of: {', '.join(KINDS)}. Auditors and the dataset's model admins, as the "
        "lineage itself." + _HEADERS_WORDS,
    )
    def get(self, request: Request, kind: str, pk: int):  # type: ignore[no-untyped-def]
        require_role(request.user, *LINEAGE_ROLES)  # before the input: without the role, a 403 whatever was asked
        data = self.InputSerializer(data=request.query_params)
        data.is_valid(raise_exception=True)
        export = lineage_export_open(
            user=request.user, kind=kind, pk=pk, fmt=ExportFormat(data.validated_data["file_format"])
        )
        return _attachment(
            lineage_export_chunks(export), fmt=export.fmt, file_name=export.file_name, event_seq=export.event_seq
        )
