"""REST API: start the re-review of the gold labels likeliest wrong (issue 8, point 1, label-issue strategy).

The scoring runs in a worker (it fits the dataset's pipeline once per fold); the
request checks the role and that the labels can be scored, then queues the job
and answers 202. The job's one audit event (label_issues.reopened) lists what it reopened.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations.selectors import dataset_get_for_user
from models_app.label_issues import MAX_LIMIT, label_issues_check, label_issues_dispatch
from workflow_site.access import Role
from workflow_site.api_schema import ErrorDetailSerializer, error_responses


class LabelIssuesReopenApi(APIView):
    class InputSerializer(serializers.Serializer):
        limit = serializers.IntegerField(
            min_value=1,
            max_value=MAX_LIMIT,
            help_text="How many of the likeliest label errors to reopen for re-review (worst first).",
        )

    class OutputSerializer(serializers.Serializer):
        dataset_id = serializers.IntegerField()
        limit = serializers.IntegerField()
        gold_labels_to_score = serializers.IntegerField(help_text="Done items' gold labels the job will score.")
        status = serializers.CharField(help_text='"queued": a worker scores and reopens; see the audit trail.')

    @extend_schema(
        request=InputSerializer,
        responses={
            202: OutputSerializer,
            **error_responses(400, 401, 403, 404),
            503: OpenApiResponse(ErrorDetailSerializer, "The job queue cannot be reached; nothing was queued."),
        },
    )
    def post(self, request: Request, dataset_id: int) -> Response:
        dataset = dataset_get_for_user(user=request.user, pk=dataset_id, roles=(Role.MODEL_ADMIN,))
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        limit = data.validated_data["limit"]
        to_score = label_issues_check(dataset=dataset)
        if not label_issues_dispatch(dataset_id=dataset.pk, user_id=request.user.pk, limit=limit):
            return Response(
                {"detail": "The job queue cannot be reached right now; nothing was queued. Try again shortly."},
                status=status.HTTP_503_SERVICE_UNAVAILABLE,
            )
        out = {"dataset_id": dataset.pk, "limit": limit, "gold_labels_to_score": to_score, "status": "queued"}
        return Response(self.OutputSerializer(out).data, status=status.HTTP_202_ACCEPTED)
