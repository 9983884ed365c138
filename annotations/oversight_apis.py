"""REST API for the stop switch (annotations/oversight.py): read it, switch the model's output off or on."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations.oversight import dataset_model_output_switch
from annotations.selectors import dataset_get_for_user
from workflow_site.access import Role
from workflow_site.api_schema import error_responses


class ModelOutputSerializer(serializers.Serializer):
    off = serializers.SerializerMethodField(help_text="True while reviewers see no model output (the stop switch).")
    off_since = serializers.DateTimeField(source="model_output_off_since", allow_null=True)
    reason = serializers.CharField(source="model_output_off_reason")

    def get_off(self, dataset) -> bool:  # type: ignore[no-untyped-def]
        return dataset.model_output_off


class ModelOutputApi(APIView):
    class InputSerializer(serializers.Serializer):
        off = serializers.BooleanField(help_text="true switches the model's output off; false shows it again.")
        reason = serializers.CharField(help_text="Why (required both ways; recorded in the audit trail).")

    @extend_schema(responses={200: ModelOutputSerializer, **error_responses(401, 403, 404)})
    def get(self, request: Request, dataset_id: int) -> Response:
        dataset = dataset_get_for_user(user=request.user, pk=dataset_id, roles=(Role.MODEL_ADMIN, Role.AUDITOR))
        return Response(ModelOutputSerializer(dataset).data)

    @extend_schema(
        request=InputSerializer, responses={200: ModelOutputSerializer, **error_responses(400, 401, 403, 404)}
    )
    def post(self, request: Request, dataset_id: int) -> Response:
        dataset = dataset_get_for_user(user=request.user, pk=dataset_id, roles=(Role.MODEL_ADMIN,))
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        dataset = dataset_model_output_switch(
            dataset_id=dataset.pk,
            user=request.user,
            off=data.validated_data["off"],
            reason=data.validated_data["reason"],
        )
        return Response(ModelOutputSerializer(dataset).data)
