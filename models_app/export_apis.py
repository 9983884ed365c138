"""Export through the API (issue 7, point 5): the same files and audit events as the export page."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.views import APIView

from annotations.selectors import dataset_get_for_user
from models_app.export_formats import ExportFormat
from models_app.export_views import export_response
from models_app.exports import ExportKind, export_open
from models_app.models import DatasetSnapshot
from workflow_site.access import MODEL_READ_ROLES
from workflow_site.api_schema import error_responses


class ExportApi(APIView):
    class InputSerializer(serializers.Serializer):
        kind = serializers.ChoiceField(choices=[k.value for k in ExportKind])
        # Not "format": DRF reads ?format= as a renderer choice (and answers 404 for csv).
        file_format = serializers.ChoiceField(
            choices=[f.value for f in ExportFormat if f != ExportFormat.JSON],
            default=ExportFormat.CSV.value,
            help_text="Ignored for kind=labelstudio, which is always Label Studio's JSON.",
        )
        snapshot = serializers.IntegerField(required=False, help_text="The snapshot id, for kind=snapshot.")

    @extend_schema(
        parameters=[InputSerializer],
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.BINARY, description="CSV (formula-like cells neutralised)"),
            (200, "application/x-ndjson"): OpenApiResponse(OpenApiTypes.BINARY, description="JSON Lines"),
            (200, "application/vnd.apache.parquet"): OpenApiResponse(OpenApiTypes.BINARY, description="Parquet"),
            **error_responses(400, 401, 403, 404),
        },
    )
    def get(self, request: Request, dataset_id: int):  # type: ignore[no-untyped-def]
        dataset = dataset_get_for_user(user=request.user, pk=dataset_id, roles=MODEL_READ_ROLES)
        data = self.InputSerializer(data=request.query_params)
        data.is_valid(raise_exception=True)
        kind = ExportKind(data.validated_data["kind"])
        snapshot = None
        if kind == ExportKind.SNAPSHOT:
            snapshot_id = data.validated_data.get("snapshot")
            snapshot = DatasetSnapshot.objects.filter(dataset=dataset, pk=snapshot_id).first() if snapshot_id else None
            if snapshot is None:
                raise serializers.ValidationError({"snapshot": ["Give the id of one of this dataset's snapshots."]})
        export = export_open(
            dataset=dataset,
            user=request.user,
            kind=kind,
            fmt=ExportFormat(data.validated_data["file_format"]),
            snapshot=snapshot,
        )
        return export_response(export)
