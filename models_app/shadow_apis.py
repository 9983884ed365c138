"""REST API for shadow mode: start or stop a version's shadow, read its report."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from models_app.selectors import model_version_get_for_user
from models_app.shadow import shadow_report, shadow_start, shadow_stop
from workflow_site.access import MODEL_READ_ROLES, Role
from workflow_site.api_schema import error_responses


class ShadowReportSerializer(serializers.Serializer):
    model_version_id = serializers.IntegerField(source="version.pk")
    in_shadow_since = serializers.DateTimeField(source="version.shadow_since", allow_null=True)
    compared = serializers.IntegerField(help_text="Reviewed items (gold from a review) the shadow predicted.")
    differ = serializers.IntegerField(help_text="Of those, where its label differs from the champion's shown label.")
    differ_rate = serializers.FloatField(allow_null=True)
    champion_accuracy = serializers.FloatField(allow_null=True)
    shadow_accuracy = serializers.FloatField(allow_null=True)
    differ_champion_right = serializers.IntegerField()
    differ_shadow_right = serializers.IntegerField()
    differ_neither = serializers.IntegerField()


class ShadowChangeApi(APIView):
    class InputSerializer(serializers.Serializer):
        action = serializers.ChoiceField(choices=["start", "stop"])
        reason = serializers.CharField(required=False, allow_blank=True, default="")

    @extend_schema(
        request=InputSerializer, responses={200: ShadowReportSerializer, **error_responses(400, 401, 403, 404)}
    )
    def post(self, request: Request, model_version_id: int) -> Response:
        version = model_version_get_for_user(user=request.user, pk=model_version_id, roles=(Role.MODEL_ADMIN,))
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        change = shadow_start if data.validated_data["action"] == "start" else shadow_stop
        version = change(model_version=version, user=request.user, reason=data.validated_data["reason"])
        return Response(ShadowReportSerializer(shadow_report(model_version=version)).data)


class ShadowReportApi(APIView):
    @extend_schema(responses={200: ShadowReportSerializer, **error_responses(401, 403, 404)})
    def get(self, request: Request, model_version_id: int) -> Response:
        version = model_version_get_for_user(user=request.user, pk=model_version_id, roles=MODEL_READ_ROLES)
        return Response(ShadowReportSerializer(shadow_report(model_version=version)).data)
