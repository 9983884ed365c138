"""REST API for a dataset's retention (annotations/retention.py): read it, set the period, place or lift a hold."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations.retention import MAX_RETENTION_DAYS, dataset_legal_hold_set, dataset_retention_set, retention_days_of
from annotations.selectors import dataset_get_for_user
from workflow_site.access import Role
from workflow_site.api_schema import error_responses


class RetentionSerializer(serializers.Serializer):
    retention_days = serializers.IntegerField(
        allow_null=True, help_text="The dataset's own period in days; null: the site default."
    )
    retention_days_in_force = serializers.SerializerMethodField(
        help_text="The period that applies (the dataset's or the site default); null: kept forever."
    )
    legal_hold_since = serializers.DateTimeField(
        allow_null=True, help_text="Since when a legal hold keeps everything; null: no hold."
    )
    legal_hold_reason = serializers.CharField()

    def get_retention_days_in_force(self, dataset) -> int | None:  # type: ignore[no-untyped-def]
        return retention_days_of(dataset)


class RetentionApi(APIView):
    class InputSerializer(serializers.Serializer):
        retention_days = serializers.IntegerField(
            allow_null=True,
            min_value=1,
            max_value=MAX_RETENTION_DAYS,
            help_text="Days item data and audit payloads are kept before removal (hashes stay); null: the site "
            "default.",
        )

    @extend_schema(responses={200: RetentionSerializer, **error_responses(401, 403, 404)})
    def get(self, request: Request, dataset_id: int) -> Response:
        dataset = dataset_get_for_user(user=request.user, pk=dataset_id, roles=(Role.MODEL_ADMIN, Role.AUDITOR))
        return Response(RetentionSerializer(dataset).data)

    @extend_schema(request=InputSerializer, responses={200: RetentionSerializer, **error_responses(400, 401, 403, 404)})
    def post(self, request: Request, dataset_id: int) -> Response:
        dataset = dataset_get_for_user(user=request.user, pk=dataset_id, roles=(Role.MODEL_ADMIN,))
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        dataset = dataset_retention_set(
            dataset_id=dataset.pk, user=request.user, retention_days=data.validated_data["retention_days"]
        )
        return Response(RetentionSerializer(dataset).data)


class LegalHoldApi(APIView):
    class InputSerializer(serializers.Serializer):
        hold = serializers.BooleanField(help_text="true places a legal hold (nothing expires); false lifts it.")
        reason = serializers.CharField(help_text="Why (required both ways; recorded in the audit trail).")

    @extend_schema(request=InputSerializer, responses={200: RetentionSerializer, **error_responses(400, 401, 403, 404)})
    def post(self, request: Request, dataset_id: int) -> Response:
        dataset = dataset_get_for_user(user=request.user, pk=dataset_id, roles=(Role.MODEL_ADMIN,))
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        dataset = dataset_legal_hold_set(
            dataset_id=dataset.pk,
            user=request.user,
            hold=data.validated_data["hold"],
            reason=data.validated_data["reason"],
        )
        return Response(RetentionSerializer(dataset).data)
