"""REST API for datasets and reviews: one view per action, role checks as in the UI."""

from __future__ import annotations

from functools import cache

from django.conf import settings
from django.core.exceptions import ValidationError
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations.imports import import_batch_upload
from annotations.models import ImportBatch, LabelClass, Review
from annotations.queue import queue_next_item
from annotations.selectors import (
    batch_get,
    dataset_get_for_user,
    datasets_for_user,
    item_answer_target_for_user,
)
from annotations.services import ReviewAnswer, review_submit
from governance.audit import ReadPurpose, data_access_record
from workflow_site.access import REVIEW_ROLES, Role
from workflow_site.api_schema import error_responses
from workflow_site.upload_limit import upload_over_limit


class DatasetListApi(APIView):
    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        name = serializers.CharField()
        slug = serializers.CharField()
        guideline_version = serializers.CharField()
        reason_codes = serializers.JSONField(help_text="Why reviewers correct the model: code and text, in order.")

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
    explanation = serializers.JSONField(
        source="prediction_explanation",
        allow_null=True,
        help_text="Why the model predicts its label, exactly as the review card shows it: "
        '{"method", "calibrated", "class", "toward", "away", "contributors": '
        "[[feature, the item's value, contribution (log-odds of class; + toward it), direction "
        '("toward", "away" or "none")], ...]}, largest |contribution| first; null when there is none.',
    )
    lease_expires_at = serializers.DateTimeField(allow_null=True)
    purged_at = serializers.DateTimeField(
        allow_null=True,
        help_text="When retention removed this item's data (values are then empty; its hashes are kept); "
        "null: the data is here.",
    )


# What a blind card hides until the reviewer has answered (the API hides the same), and what the stop
# switch hides from reviewers everywhere.
PREDICTION_FIELDS = (
    "prediction_id",
    "predicted_label",
    "predicted_confidence",
    "predicted_probabilities",
    "explanation",
)


class NextItemApi(APIView):
    class OutputSerializer(serializers.Serializer):
        item = ItemOutputSerializer(allow_null=True)
        selection_strategy = serializers.CharField(allow_null=True)
        selection_score = serializers.FloatField(
            allow_null=True,
            help_text="The strategy's score for this item; null on a blind item (it would give the prediction away).",
        )
        blind = serializers.BooleanField(
            default=False,
            help_text="Blind review: the prediction is withheld (null) until you answer; send "
            "shown_prediction_id = blind_prediction_id. The answer's response then carries the prediction.",
        )
        blind_prediction_id = serializers.IntegerField(allow_null=True, default=None)

    @extend_schema(responses={200: OutputSerializer, **error_responses(401, 403, 404)})
    def get(self, request: Request, dataset_id: int) -> Response:
        dataset = dataset_get_for_user(user=request.user, pk=dataset_id, roles=REVIEW_ROLES)
        queued = queue_next_item(dataset=dataset, reviewer=request.user)
        if queued is None:
            return Response({"item": None, "selection_strategy": None, "selection_score": None})
        data_access_record(user=request.user, item=queued.item, purpose=ReadPurpose.API, served_by=queued.strategy)
        data = shared_representer(self.OutputSerializer).to_representation(
            {"item": queued.item, "selection_strategy": queued.strategy, "selection_score": queued.score}
        )
        if queued.blind:
            data["blind"], data["blind_prediction_id"] = True, queued.item.prediction_id
            data["item"].update(dict.fromkeys(PREDICTION_FIELDS))
            # The queue score is derived from the prediction (least confidence is
            # 1 - its confidence): the card hides it on a blind item, and so must the API.
            data["selection_score"] = None
        return Response(data)


class ReviewCreateApi(APIView):
    class InputSerializer(serializers.Serializer):
        label = serializers.CharField(required=False, allow_null=True, help_text="Label name; omit or null to skip.")
        skip = serializers.BooleanField(default=False)
        shown_prediction_id = serializers.IntegerField(allow_null=True, help_text="The prediction you were shown.")
        reason = serializers.CharField(required=False, allow_blank=True, default="")
        reason_code = serializers.CharField(
            required=False,
            allow_blank=True,
            default="",
            help_text="One of the dataset's reason codes (listed by GET /api/datasets/); required to correct if any.",
        )
        flagged = serializers.BooleanField(default=False, help_text="Ask for this item to be followed up.")
        uncertain = serializers.BooleanField(
            default=False, help_text="Answer 'uncertain' (no label): the item goes to an adjudicator."
        )

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        item_id = serializers.IntegerField()
        decision = serializers.CharField()
        mode = serializers.CharField(help_text="open, or blind (the prediction was withheld; now revealed below).")
        time_on_item_ms = serializers.IntegerField(allow_null=True)
        revealed_prediction = serializers.SerializerMethodField(
            help_text="After a blind answer: the prediction that was withheld "
            "(to change your answer: POST /api/reviews/<id>/revise/)."
        )
        reason_code = serializers.CharField()
        flagged = serializers.BooleanField()
        label = serializers.CharField(source="label.name", allow_null=True, default=None)
        selection_strategy = serializers.CharField()
        selection_score = serializers.FloatField(allow_null=True)
        created_at = serializers.DateTimeField()

        def get_revealed_prediction(self, review: Review) -> dict | None:
            item = review.item
            if review.mode != Review.Mode.BLIND or item.dataset.model_output_off:  # the stop switch reveals nothing
                return None
            return {
                "prediction_id": item.prediction_id,
                "label": item.predicted_label.name if item.predicted_label_id else None,
                "confidence": item.predicted_confidence,
                "probabilities": item.predicted_probabilities,
            }

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer, **error_responses(400, 401, 403, 404)})
    def post(self, request: Request, item_id: int) -> Response:
        # The access check comes first (a 403 before any 400); it reads the label named in the body
        # in the same query, since every answer names one.
        label_hint = _label_name_hint(request.data)
        dataset_id, label = item_answer_target_for_user(
            user=request.user, pk=item_id, roles=REVIEW_ROLES, label_name=label_hint
        )
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if data.validated_data["uncertain"] and (data.validated_data["skip"] or data.validated_data.get("label")):
            raise ValidationError({"uncertain": "An 'uncertain' answer has no label and is not a skip."})
        if data.validated_data["skip"] or data.validated_data["uncertain"]:
            label = None
        else:
            name = data.validated_data.get("label")
            if not name:
                raise ValidationError({"label": "Give a label, or set skip to true."})
            if name != label_hint:  # the serializer read the body differently from the hint: look it up
                label = LabelClass.objects.filter(dataset_id=dataset_id, name=name).order_by().first()
            if label is None:
                raise ValidationError({"label": f"Unknown label {name!r} for this dataset."})
        review = review_submit(
            item_id=item_id,
            reviewer=request.user,
            answer=ReviewAnswer(
                label=label,
                shown_prediction_id=data.validated_data["shown_prediction_id"],
                reason=data.validated_data["reason"],
                reason_code=data.validated_data["reason_code"],
                flagged=data.validated_data["flagged"],
                uncertain=data.validated_data["uncertain"],
            ),
        )
        return Response(
            shared_representer(self.OutputSerializer).to_representation(review), status=status.HTTP_201_CREATED
        )


@cache
def shared_representer(serializer_class: type[serializers.Serializer]) -> serializers.Serializer:
    """One instance of an output serializer, its fields bound once, for `to_representation` on each request.

    DRF deep-copies every declared field (and a nested serializer's) each time a serializer is made:
    for the next-item and answer responses that was about a millisecond of every review step. An
    output serializer keeps no state between calls of to_representation (no initial data, errors or
    context here), so one instance serves every request and thread.
    """
    return serializer_class()


def _label_name_hint(data: object) -> str | None:
    """The label name in an answer's body as the input serializer will read it (stripped), when it is a string."""
    value = data.get("label") if isinstance(data, dict) else None
    return value.strip() if isinstance(value, str) else None


class ImportBatchOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    dataset_id = serializers.IntegerField()
    file_name = serializers.CharField()
    file_sha256 = serializers.CharField()
    file_size = serializers.IntegerField()
    purpose = serializers.CharField()
    status = serializers.ChoiceField(choices=ImportBatch.Status.choices)
    stage = serializers.CharField(help_text="What the worker is doing, in words.")
    rows_total = serializers.IntegerField(help_text="Data rows in the file (known once it is read).")
    rows_done = serializers.IntegerField(help_text="Rows staged so far: progress is rows_done / rows_total.")
    rows_imported = serializers.IntegerField()
    rows_rejected = serializers.IntegerField()
    attempts = serializers.IntegerField()
    uploaded_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    error = serializers.CharField(help_text="Why the import failed (not a problem in the file).")
    report = serializers.JSONField(help_text="Row-level report: errors (line, column, value, reason), error_count.")
    status_url = serializers.SerializerMethodField(help_text="Poll this until status is imported, rejected or failed.")

    def get_status_url(self, batch: ImportBatch) -> str:
        return reverse("api_import_detail", args=[batch.dataset_id, batch.pk])


class ImportCreateApi(APIView):
    """Upload a CSV file: it is stored and imported by a worker; poll status_url for progress and the report."""

    parser_classes = [MultiPartParser]

    class InputSerializer(serializers.Serializer):
        file = serializers.FileField(help_text="UTF-8 CSV, header on line 1 (external_id, the features, label?).")
        purpose = serializers.ChoiceField(choices=ImportBatch.Purpose.choices, default=ImportBatch.Purpose.REVIEW)

    @extend_schema(
        request={"multipart/form-data": InputSerializer},
        responses={202: ImportBatchOutputSerializer, **error_responses(400, 401, 403, 404)},
    )
    def post(self, request: Request, dataset_id: int) -> Response:
        dataset = dataset_get_for_user(user=request.user, pk=dataset_id, roles=(Role.MODEL_ADMIN,))
        data = self.InputSerializer(data=request.data)
        if too_big := upload_over_limit(request._request):
            raise ValidationError({"file": too_big})
        data.is_valid(raise_exception=True)
        upload = data.validated_data["file"]
        if upload.size > settings.IMPORT_MAX_BYTES:
            raise ValidationError(
                {"file": f"The file is {upload.size:,} bytes; the limit is {settings.IMPORT_MAX_BYTES:,}."}
            )
        batch = import_batch_upload(
            dataset=dataset,
            user=request.user,
            file_name=upload.name,
            chunks=upload.chunks(),
            purpose=data.validated_data["purpose"],
        )
        body = ImportBatchOutputSerializer(batch).data
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["status_url"]})


class ImportDetailApi(APIView):
    @extend_schema(responses={200: ImportBatchOutputSerializer, **error_responses(401, 403, 404)})
    def get(self, request: Request, dataset_id: int, batch_id: int) -> Response:
        dataset = dataset_get_for_user(user=request.user, pk=dataset_id, roles=(Role.MODEL_ADMIN, Role.AUDITOR))
        return Response(ImportBatchOutputSerializer(batch_get(dataset=dataset, pk=batch_id)).data)
