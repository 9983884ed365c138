"""REST API for the workbench (issue 8): queue settings and reason codes, revising or undoing an answer,
adjudication.

The same services and role checks as the pages.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations.adjudication import adjudication_submit, item_answers
from annotations.apis import PREDICTION_FIELDS, ItemOutputSerializer
from annotations.models import LabelClass, QueueStrategy, Review
from annotations.queue import adjudication_next_item
from annotations.selectors import dataset_get_for_user, item_get_for_user
from annotations.services import ReviewAnswer, review_revise
from annotations.workbench import MAX_OVERLAP, QueueSettings, dataset_queue_settings_set, queue_priorities_dispatch
from governance.audit import ReadPurpose, data_access_record
from workflow_site.access import REVIEW_ROLES, Role
from workflow_site.api_schema import error_responses


class QueueSettingsApi(APIView):
    class SettingsSerializer(serializers.Serializer):
        strategy = serializers.ChoiceField(choices=QueueStrategy.choices)
        audit_slice_percent = serializers.IntegerField(
            min_value=0, max_value=100, help_text="Share of served items picked uniformly at random (default 10)."
        )
        audit_slice_off_reason = serializers.CharField(
            allow_blank=True, default="", help_text="Required when audit_slice_percent is 0."
        )
        overlap = serializers.IntegerField(min_value=1, max_value=MAX_OVERLAP, help_text="Reviewers per item.")
        blind_percent = serializers.IntegerField(
            min_value=0, max_value=100, help_text="Share of served items shown without the prediction until answered."
        )
        # A JSONField, not a nested list serializer: the service's check (annotations/reason_codes.py) names the
        # bad entry (reason_codes[2]) with what is wrong with it, for any shape sent.
        reason_codes = serializers.JSONField(
            required=False,
            help_text='Why reviewers correct the model: [{"code": "margin", "text": "Irregular margin"}, ...] in the '
            "order the card lists them; [] for none. Left out: the dataset's codes stay as they are. Reviews "
            "already given keep the code they recorded.",
        )

    class OutputSerializer(SettingsSerializer):
        rescoring_queued = serializers.BooleanField(
            help_text="The strategy changed and the open items are being reordered in the background."
        )

    @extend_schema(responses={200: SettingsSerializer, **error_responses(401, 403, 404)})
    def get(self, request: Request, dataset_id: int) -> Response:
        dataset = dataset_get_for_user(user=request.user, pk=dataset_id, roles=(Role.MODEL_ADMIN, Role.AUDITOR))
        return Response(self.SettingsSerializer(QueueSettings.of(dataset).__dict__).data)

    @extend_schema(request=SettingsSerializer, responses={200: OutputSerializer, **error_responses(400, 401, 403, 404)})
    def put(self, request: Request, dataset_id: int) -> Response:
        dataset = dataset_get_for_user(user=request.user, pk=dataset_id, roles=(Role.MODEL_ADMIN,))
        data = self.SettingsSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        rescore = dataset_queue_settings_set(
            dataset_id=dataset.pk, user=request.user, wanted=QueueSettings(**data.validated_data)
        )
        queued = rescore and queue_priorities_dispatch(dataset_id=dataset.pk)
        dataset.refresh_from_db()
        return Response({**QueueSettings.of(dataset).__dict__, "rescoring_queued": queued})


class ReviewReviseApi(APIView):
    class InputSerializer(serializers.Serializer):
        action = serializers.ChoiceField(
            choices=[("revise", "revise"), ("undo", "undo")],
            help_text="revise: replace your answer (after a blind answer, or a slip); undo: withdraw it.",
        )
        label = serializers.CharField(required=False, allow_null=True, help_text="The new label (revise).")
        uncertain = serializers.BooleanField(default=False, help_text="The new answer is 'uncertain' (revise).")
        reason = serializers.CharField(required=False, allow_blank=True, default="")
        reason_code = serializers.CharField(required=False, allow_blank=True, default="")
        flagged = serializers.BooleanField(
            required=False,
            help_text="Ask for this item to be followed up (revise). Left out: the answer keeps the flag it had, "
            "as on the reveal card, whose box starts as the answer left it.",
        )

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        item_id = serializers.IntegerField()
        decision = serializers.CharField()
        mode = serializers.CharField()
        flagged = serializers.BooleanField()
        label = serializers.CharField(source="label.name", allow_null=True, default=None)
        supersedes = serializers.IntegerField(source="supersedes_id")
        created_at = serializers.DateTimeField()

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer, **error_responses(400, 401, 403, 404)})
    def post(self, request: Request, review_id: int) -> Response:
        """Revise or undo your own last answer to an item, within LOUPE_REVISE_SECONDS of giving it."""
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        original = Review.objects.filter(pk=review_id, reviewer_id=request.user.pk).first()
        if original is None:
            raise ValidationError("You have no answer with that id.")
        item = item_get_for_user(user=request.user, pk=original.item_id, roles=REVIEW_ROLES, related=())
        answer = None
        if data.validated_data["action"] == "revise":
            label = None
            if not data.validated_data["uncertain"]:
                name = data.validated_data.get("label")
                label = LabelClass.objects.filter(dataset_id=item.dataset_id, name=name).first() if name else None
                if label is None:
                    raise ValidationError({"label": f"Give one of the dataset's labels (got {name!r}), or uncertain."})
            answer = ReviewAnswer(
                label=label,
                shown_prediction_id=item.prediction_id,
                reason=data.validated_data["reason"],
                reason_code=data.validated_data["reason_code"],
                flagged=data.validated_data.get("flagged", original.flagged),
                uncertain=data.validated_data["uncertain"],
            )
        review = review_revise(review_id=original.pk, reviewer=request.user, answer=answer)
        return Response(self.OutputSerializer(review).data, status=status.HTTP_201_CREATED)


class AnswerSerializer(serializers.Serializer):
    review_id = serializers.IntegerField(source="review.pk")
    reviewer = serializers.CharField(source="review.reviewer.username")
    decision = serializers.CharField(source="review.decision")
    label = serializers.CharField(source="review.label.name", allow_null=True, default=None)
    mode = serializers.CharField(source="review.mode")
    reason_code = serializers.CharField(source="review.reason_code")
    reason = serializers.CharField(source="review.reason")
    time_on_item_ms = serializers.IntegerField(source="review.time_on_item_ms", allow_null=True)
    created_at = serializers.DateTimeField(source="review.created_at")
    superseded_review_ids = serializers.SerializerMethodField()

    def get_superseded_review_ids(self, answer) -> list[int]:  # type: ignore[no-untyped-def]
        return [review.pk for review in answer.superseded]


class AdjudicationNextApi(APIView):
    class OutputSerializer(serializers.Serializer):
        item = ItemOutputSerializer(allow_null=True)
        answers = AnswerSerializer(many=True)

    @extend_schema(responses={200: OutputSerializer, **error_responses(401, 403, 404)})
    def get(self, request: Request, dataset_id: int) -> Response:
        """The next item awaiting adjudication, leased to you, with every answer that counts."""
        dataset = dataset_get_for_user(user=request.user, pk=dataset_id, roles=(Role.ADJUDICATOR,))
        queued = adjudication_next_item(dataset=dataset, adjudicator=request.user)
        if queued is None:
            return Response({"item": None, "answers": []})
        data_access_record(user=request.user, item=queued.item, purpose=ReadPurpose.API, served_by=queued.strategy)
        data = self.OutputSerializer({"item": queued.item, "answers": item_answers(item=queued.item)}).data
        if dataset.model_output_off:  # the stop switch hides the model's output from adjudicators too
            data["item"].update(dict.fromkeys(PREDICTION_FIELDS))
        return Response(data)


class AdjudicationSubmitApi(APIView):
    class InputSerializer(serializers.Serializer):
        label = serializers.CharField(help_text="The label you decide on.")
        reason = serializers.CharField(help_text="Why; kept with the gold label.")

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        item_id = serializers.IntegerField()
        decision = serializers.CharField()
        label = serializers.CharField(source="label.name")
        created_at = serializers.DateTimeField()

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer, **error_responses(400, 401, 403, 404)})
    def post(self, request: Request, item_id: int) -> Response:
        item = item_get_for_user(user=request.user, pk=item_id, roles=(Role.ADJUDICATOR,), related=())
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        label = LabelClass.objects.filter(dataset_id=item.dataset_id, name=data.validated_data["label"]).first()
        if label is None:
            raise ValidationError({"label": f"Unknown label {data.validated_data['label']!r} for this dataset."})
        review = adjudication_submit(
            item_id=item.pk, adjudicator=request.user, label=label, reason=data.validated_data["reason"]
        )
        return Response(self.OutputSerializer(review).data, status=status.HTTP_201_CREATED)
