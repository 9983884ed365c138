"""REST API for the reviewer report (issue 8, point 4): automation bias per reviewer, the page's figures as JSON."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations.reviewer_report import LIKELY, NO_SIGN, NOT_ENOUGH, dataset_reviewer_report_for_user
from workflow_site.api_schema import error_responses


class ReviewerShareSerializer(serializers.Serializer):
    value = serializers.FloatField(allow_null=True, help_text="count / total; null when total is 0.")
    count = serializers.IntegerField()
    total = serializers.IntegerField()


class RubberStampRuleSerializer(serializers.Serializer):
    min_accept_rate = serializers.FloatField()
    max_time_ratio = serializers.FloatField(help_text="Median accept time / median blind time, below.")
    min_shown_answers = serializers.IntegerField()
    min_timed_accepts = serializers.IntegerField()
    min_blind_answers = serializers.IntegerField(help_text="Timed blind answers.")
    words = serializers.CharField()


class RubberStampFlagSerializer(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=[LIKELY, NO_SIGN, NOT_ENOUGH],
        help_text=f"{LIKELY}: likely rubber-stamping; {NO_SIGN}: judged, not flagged; "
        f"{NOT_ENOUGH}: too few answers to judge.",
    )
    words = serializers.CharField(help_text="The verdict and the figures or the missing answers, in words.")


class ReviewerReportCountsSerializer(serializers.Serializer):
    blind_labelled = serializers.IntegerField()
    blind_uncertain = serializers.IntegerField()
    blind_compared = serializers.IntegerField(help_text="Blind labels whose hidden label is known exactly.")
    blind_changed = serializers.IntegerField(help_text="Prediction changed since: not comparable.")
    blind_no_prediction = serializers.IntegerField()
    shown_accept = serializers.IntegerField()
    shown_correct = serializers.IntegerField()
    shown_uncertain = serializers.IntegerField()
    shown_no_prediction = serializers.IntegerField()
    revised_after_reveal = serializers.IntegerField()
    revised_to_model = serializers.IntegerField()
    revised_shown = serializers.IntegerField()
    withdrawn = serializers.IntegerField()
    skips = serializers.IntegerField()
    blind_timed = serializers.IntegerField()
    accept_timed = serializers.IntegerField()


class ReviewerReportRowSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="tallies.reviewer_id")
    username = serializers.CharField(source="tallies.username")
    blind_agreement = ReviewerShareSerializer(help_text="Blind labels equal to the hidden prediction's label.")
    shown_agreement = ReviewerShareSerializer(help_text="accept / (accept + correct), prediction shown.")
    accept_rate = ReviewerShareSerializer(help_text="accept / shown answers (accept, correct, uncertain).")
    revision_rate = ReviewerShareSerializer(help_text="Blind answers revised after the reveal.")
    revised_to_model = ReviewerShareSerializer(help_text="Of those revisions, the ones that took the model's label.")
    agreement_gap = serializers.FloatField(allow_null=True, help_text="Shown minus blind agreement, points.")
    blind_median_ms = serializers.FloatField(source="tallies.blind_median_ms", allow_null=True)
    accept_median_ms = serializers.FloatField(source="tallies.accept_median_ms", allow_null=True)
    time_ratio = serializers.FloatField(allow_null=True, help_text="Median accept time / median blind time.")
    flag = RubberStampFlagSerializer()
    counts = ReviewerReportCountsSerializer(source="tallies")


class ReviewerReportApi(APIView):
    """GET (model admins of the dataset, auditors): each reviewer's agreement with the model blind and shown.

    An answer is a reviewer's first answer to a card; a revision after the reveal counts as a revision
    and the blind answer stays the blind figure. The definitions are annotations/reviewer_report.py's.
    """

    class OutputSerializer(serializers.Serializer):
        rule = RubberStampRuleSerializer()
        flagged = serializers.IntegerField(help_text="Reviewers flagged as likely rubber-stamping.")
        reviewers = ReviewerReportRowSerializer(many=True, help_text="Every reviewer with a review, by username.")

    @extend_schema(
        operation_id="reviewer_report_read",
        responses={200: OutputSerializer, **error_responses(401, 403, 404)},
    )
    def get(self, request: Request, dataset_id: int) -> Response:
        report = dataset_reviewer_report_for_user(user=request.user, dataset_id=dataset_id)
        return Response(self.OutputSerializer(report).data)
