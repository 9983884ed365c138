"""REST API for training runs."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations.selectors import dataset_get_for_user
from models_app.models import TrainingRun
from models_app.selectors import run_get_for_user
from models_app.services import training_run_cancel, training_run_request
from workflow_site.access import Role
from workflow_site.api_schema import error_responses


class TriggerSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    reason = serializers.CharField()
    created_at = serializers.DateTimeField()
    requested_by = serializers.CharField(source="requested_by.username", allow_null=True, default=None)


class TrainingRunOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    dataset_id = serializers.IntegerField()
    trigger = serializers.CharField()
    status = serializers.CharField()
    progress = serializers.IntegerField()
    stage = serializers.CharField()
    epoch = serializers.IntegerField(allow_null=True)
    epochs_total = serializers.IntegerField(allow_null=True)
    algorithm = serializers.CharField()
    mode = serializers.CharField()
    seed = serializers.IntegerField()
    cancel_requested_at = serializers.DateTimeField(allow_null=True, help_text="Set while a running run is stopping.")
    triggers = serializers.SerializerMethodField(help_text="Every reason to train this run answers (coalesced).")
    requested_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    error = serializers.CharField()
    model_version = serializers.SerializerMethodField()

    @extend_schema_field(TriggerSerializer(many=True))
    def get_triggers(self, run: TrainingRun) -> list[dict]:
        return TriggerSerializer(run.triggers.all(), many=True).data

    def get_model_version(self, run: TrainingRun) -> int | None:
        version = getattr(run, "model_version", None)
        return version.pk if version else None


class TrainingRunCreateApi(APIView):
    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(required=False, allow_blank=True, default="")

    @extend_schema(
        request=InputSerializer, responses={201: TrainingRunOutputSerializer, **error_responses(400, 401, 403, 404)}
    )
    def post(self, request: Request, dataset_id: int) -> Response:
        dataset = dataset_get_for_user(user=request.user, pk=dataset_id, roles=(Role.MODEL_ADMIN,))
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        run = training_run_request(
            dataset=dataset,
            trigger=TrainingRun.Trigger.MANUAL,
            requested_by=request.user,
            reason=data.validated_data["reason"] or "Started through the API",
        )
        return Response(TrainingRunOutputSerializer(run).data, status=status.HTTP_201_CREATED)


class TrainingRunCancelApi(APIView):
    """Cancel a run: a queued one at once, a running one at its next step (status stays running, with
    cancel_requested_at set, until the worker has stopped). 400 for a run that has already ended."""

    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(required=False, allow_blank=True, default="")

    @extend_schema(
        request=InputSerializer, responses={200: TrainingRunOutputSerializer, **error_responses(400, 401, 403, 404)}
    )
    def post(self, request: Request, run_id: int) -> Response:
        run = run_get_for_user(user=request.user, pk=run_id, roles=(Role.MODEL_ADMIN,))
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        cancelled = training_run_cancel(run_id=run.pk, user=request.user, reason=data.validated_data["reason"])
        return Response(TrainingRunOutputSerializer(cancelled).data)


class TrainingRunDetailApi(APIView):
    @extend_schema(responses={200: TrainingRunOutputSerializer, **error_responses(401, 403, 404)})
    def get(self, request: Request, run_id: int) -> Response:
        return Response(TrainingRunOutputSerializer(run_get_for_user(user=request.user, pk=run_id)).data)
