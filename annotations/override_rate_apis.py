"""REST API for the override rates (issue 10, point 6): the page's weekly figures as JSON."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations.override_rates import MAX_WEEKS, dataset_override_rates_for_user
from workflow_site.api_schema import error_responses


class OverrideTallySerializer(serializers.Serializer):
    accepts = serializers.IntegerField()
    overrides = serializers.IntegerField(help_text="Corrections: the reviewer's label differs from the shown one.")
    uncertain = serializers.IntegerField(help_text="Counted apart: not in the rate.")
    rate = serializers.FloatField(allow_null=True, help_text="overrides / (accepts + overrides); null when 0.")


class OverrideWeekSerializer(serializers.Serializer):
    week = serializers.DateField(help_text="The week's Monday (site time zone).")
    accepts = serializers.IntegerField(source="tally.accepts")
    overrides = serializers.IntegerField(source="tally.overrides")
    uncertain = serializers.IntegerField(source="tally.uncertain")
    rate = serializers.FloatField(source="tally.rate", allow_null=True, help_text="null: no accept or override.")


class OverrideSeriesSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField(help_text="Username, or the predicted class's name.")
    total = OverrideTallySerializer(help_text="The whole period.")
    weeks = OverrideWeekSerializer(many=True, help_text="Every week of the period, empty weeks as zeros.")


class OverrideRatesApi(APIView):
    """GET (model admins of the dataset, auditors): weekly override rates per reviewer and per predicted class.

    An answer counts when the prediction was shown and it is the reviewer's standing answer to the
    card; blind answers, revisions after a reveal, skips and undos are left out. The definitions are
    annotations/override_rates.py's.
    """

    class InputSerializer(serializers.Serializer):
        start = serializers.CharField(
            required=False,
            allow_blank=True,
            help_text="First day (YYYY-MM-DD), back to its Monday. Default: 12 weeks before the end.",
        )
        end = serializers.CharField(
            required=False,
            allow_blank=True,
            help_text=f"Last day (YYYY-MM-DD), on to its Sunday. Default: this week. At most {MAX_WEEKS} weeks in all.",
        )

    class OutputSerializer(serializers.Serializer):
        start = serializers.DateField(source="period.start", help_text="A Monday.")
        end = serializers.DateField(source="period.end", help_text="A Sunday, included.")
        total = OverrideTallySerializer(help_text="All reviewers over the period.")
        reviewers = OverrideSeriesSerializer(many=True, help_text="Reviewers with an answer in the period.")
        classes = OverrideSeriesSerializer(many=True, help_text="Predicted classes shown in the period.")

    @extend_schema(
        operation_id="override_rates_read",
        parameters=[InputSerializer],
        responses={200: OutputSerializer, **error_responses(400, 401, 403, 404)},
    )
    def get(self, request: Request, dataset_id: int) -> Response:
        params = self.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        rates = dataset_override_rates_for_user(
            user=request.user,
            dataset_id=dataset_id,
            start=params.validated_data.get("start") or None,
            end=params.validated_data.get("end") or None,
        )
        return Response(self.OutputSerializer(rates).data)
