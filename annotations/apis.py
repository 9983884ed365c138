"""REST API for datasets and reviews: one view per action, role checks as in the UI."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations.models import LabelClass
from annotations.queue import queue_next_item
from annotations.selectors import dataset_get_for_user, datasets_for_user, item_get_for_user
from annotations.services import ReviewAnswer, review_submit
from governance.audit import ReadPurpose, data_access_record
from workflow_site.access import REVIEW_ROLES
from workflow_site.api_schema import error_responses


class DatasetListApi(APIView):
    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        name = serializers.CharField()
        slug = serializers.CharField()
        guideline_version = serializers.CharField()

    @extend_schema(responses={200: OutputSerializer(many=True), **error_responses(401, 403)})
    def get(self, request: Request) -> Response:
        datasets = datasets_for_user(user=request.user)
        return Response(self.OutputSerializer(datasets, many=True).data)


class ItemOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    external_id = serializers.CharField()
    values = serializers.JSONField()
    source_file = serializers.CharField()
    source_row = serializers.IntegerField()
    observed_at = serializers.DateTimeField(allow_null=True)
    prediction_id = serializers.IntegerField(allow_null=True)
    predicted_label = serializers.CharField(source="predicted_label.name", allow_null=True, default=None)
    predicted_confidence = serializers.FloatField(allow_null=True)
    predicted_probabilities = serializers.JSONField(allow_null=True)
    lease_expires_at = serializers.DateTimeField(allow_null=True)


class NextItemApi(APIView):
    class OutputSerializer(serializers.Serializer):
        item = ItemOutputSerializer(allow_null=True)
        selection_strategy = serializers.CharField(allow_null=True)
        selection_score = serializers.FloatField(allow_null=True)

    @extend_schema(responses={200: OutputSerializer, **error_responses(401, 403, 404)})
    def get(self, request: Request, dataset_id: int) -> Response:
        dataset = dataset_get_for_user(user=request.user, pk=dataset_id, roles=REVIEW_ROLES)
        queued = queue_next_item(dataset=dataset, reviewer=request.user)
        if queued is None:
            return Response({"item": None, "selection_strategy": None, "selection_score": None})
        data_access_record(user=request.user, item=queued.item, purpose=ReadPurpose.API)
        return Response(
            self.OutputSerializer(
                {"item": queued.item, "selection_strategy": queued.strategy, "selection_score": queued.score}
            ).data
        )


class ReviewCreateApi(APIView):
    class InputSerializer(serializers.Serializer):
        label = serializers.CharField(required=False, allow_null=True, help_text="Label name; omit or null to skip.")
        skip = serializers.BooleanField(default=False)
        shown_prediction_id = serializers.IntegerField(allow_null=True, help_text="The prediction you were shown.")
        reason = serializers.CharField(required=False, allow_blank=True, default="")

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        item_id = serializers.IntegerField()
        decision = serializers.CharField()
        label = serializers.CharField(source="label.name", allow_null=True, default=None)
        selection_strategy = serializers.CharField()
        selection_score = serializers.FloatField(allow_null=True)
        created_at = serializers.DateTimeField()

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer, **error_responses(400, 401, 403, 404)})
    def post(self, request: Request, item_id: int) -> Response:
        item = item_get_for_user(user=request.user, pk=item_id, roles=REVIEW_ROLES)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        label = None
        if not data.validated_data["skip"]:
            name = data.validated_data.get("label")
            if not name:
                raise ValidationError({"label": "Give a label, or set skip to true."})
            label = LabelClass.objects.filter(dataset_id=item.dataset_id, name=name).first()
            if label is None:
                raise ValidationError({"label": f"Unknown label {name!r} for this dataset."})
        review = review_submit(
            item_id=item.pk,
            reviewer=request.user,
            answer=ReviewAnswer(
                label=label,
                shown_prediction_id=data.validated_data["shown_prediction_id"],
                reason=data.validated_data["reason"],
            ),
        )
        return Response(self.OutputSerializer(review).data, status=status.HTTP_201_CREATED)
