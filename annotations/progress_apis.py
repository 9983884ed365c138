"""REST API for a reviewer's progress in a dataset: the figures the review card shows (issue 8).

A separate endpoint, not part of the next-item answer: the API review loop stays
lean (no counts on every item), and a client asks for progress when it wants it.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations.selectors import dataset_get_for_user, reviewer_progress
from workflow_site.access import REVIEW_ROLES
from workflow_site.api_schema import error_responses


class ProgressAgreementSerializer(serializers.Serializer):
    agreed = serializers.IntegerField(help_text="Of those compared, your answers that match the settled gold label.")
    compared = serializers.IntegerField(
        help_text="Your answers in force on items whose gold label was settled with other reviewers "
        "(consensus under overlap) or by an adjudicator; a lone answer that became gold is not compared."
    )


class ProgressApi(APIView):
    class OutputSerializer(serializers.Serializer):
        answers_today = serializers.IntegerField(
            help_text="Items you answered since midnight (server time zone) whose answer is still in force: "
            "a revised item counts once, an undone one not at all (unless answered again); skips are not answers."
        )
        open_count = serializers.IntegerField(help_text="Items of the dataset awaiting review, by anyone.")
        left_for_you = serializers.IntegerField(
            help_text="Open items you have not answered. With overlap 1 an answer closes its item, so this "
            "equals open_count; with overlap above 1 the open items you answered (waiting for other reviewers) "
            "are left out."
        )
        # The card's "you agree with settled gold on N of M", read from the same object.
        agreement_so_far = ProgressAgreementSerializer(source="*")

    @extend_schema(responses={200: OutputSerializer, **error_responses(401, 403, 404)})
    def get(self, request: Request, dataset_id: int) -> Response:
        """Your progress in the dataset, as the review card shows it: answers today, items left, agreement."""
        dataset = dataset_get_for_user(user=request.user, pk=dataset_id, roles=REVIEW_ROLES)
        progress = reviewer_progress(dataset=dataset, reviewer=request.user)
        return Response(self.OutputSerializer(progress).data)
