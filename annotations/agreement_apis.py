"""REST API for agreement between a dataset's reviewers (issue 8, point 3): the page's figures as JSON."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations.agreement import dataset_agreement_for_user
from annotations.models import GoldLabel
from workflow_site.api_schema import error_responses


class AgreementFigureSerializer(serializers.Serializer):
    value = serializers.FloatField(allow_null=True, help_text="The figure; null when undefined (`reason` says why).")
    n_items = serializers.IntegerField(help_text="The items behind the figure.")
    low = serializers.FloatField(allow_null=True, help_text="Bootstrap percentile interval, lower end.")
    high = serializers.FloatField(allow_null=True, help_text="Bootstrap percentile interval, upper end.")
    n_resamples = serializers.IntegerField(help_text="Resamples in which the figure was defined.")
    reason = serializers.CharField(help_text="Why the figure or its interval is missing; empty otherwise.")


class AgreementReviewerSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()


class FleissSerializer(serializers.Serializer):
    kappa = AgreementFigureSerializer()
    ratings_per_item = serializers.IntegerField(help_text="m: the number of answers per item the figure is over.")
    n_items_left_out = serializers.IntegerField(help_text="Items with two or more answers, but not m.")


class PairKappaSerializer(serializers.Serializer):
    reviewer_a = serializers.IntegerField(source="rater_a")
    reviewer_b = serializers.IntegerField(source="rater_b")
    kappa = AgreementFigureSerializer(help_text="Cohen's kappa over the items both answered.")


class ClassAgreementSerializer(serializers.Serializer):
    category = serializers.CharField(help_text="The label class's name.")
    fleiss_kappa = AgreementFigureSerializer(help_text="This class against the rest, on Fleiss' m-answer items.")
    alpha = AgreementFigureSerializer(help_text="Krippendorff's alpha, this class against the rest.")


class ReferenceAgreementSerializer(serializers.Serializer):
    reviewer = serializers.IntegerField(source="rater")
    accuracy = AgreementFigureSerializer(
        help_text="Share of the reviewer's items with this reference where their answer in force matches it "
        "(n_items: those items; an uncertain answer never matches)."
    )
    kappa = AgreementFigureSerializer(help_text="Cohen's kappa between the reviewer and the reference, same items.")
    n_agree = serializers.IntegerField(help_text="Items where the reviewer's answer matches the reference.")


class AgreementApi(APIView):
    """GET (model admins of the dataset, auditors): agreement over the reviewers' answers in force.

    An answer in force is a reviewer's latest non-skip review of an item; the figures are those of
    annotations/agreement_metrics.py, with the page's bootstrap (annotations/agreement.py). Each
    reviewer is compared with two references: gold of any origin (`reference`) and adjudicated gold
    only (`reference_adjudicated`).
    """

    class InputSerializer(serializers.Serializer):
        guideline_version = serializers.CharField(
            required=False,
            allow_blank=True,
            max_length=40,
            help_text="Only answers in force made under this guideline version; empty or absent for all.",
        )

    class OutputSerializer(serializers.Serializer):
        guideline_version = serializers.CharField(allow_null=True, help_text="The filter; null for all versions.")
        guideline_versions = serializers.ListField(
            child=serializers.CharField(), help_text="Versions of the answers in force, whatever the filter."
        )
        answers = serializers.IntegerField(help_text="Answers in force behind the figures.")
        items_rated = serializers.IntegerField()
        items_overlapping = serializers.IntegerField(help_text="Items with answers from two or more reviewers.")
        superseded = serializers.IntegerField(help_text="Answers replaced by the same reviewer's later one.")
        skips = serializers.IntegerField(help_text="Skips: never counted as answers.")
        no_overlap_reason = serializers.CharField(help_text="Why there is no figure between reviewers; else empty.")
        confidence = serializers.FloatField(source="bootstrap.confidence", help_text="Of the bootstrap intervals.")
        n_resamples = serializers.IntegerField(source="bootstrap.n_resamples")
        reviewers = AgreementReviewerSerializer(many=True, help_text="The reviewers with an answer, in figure order.")
        categories = serializers.ListField(child=serializers.CharField(), source="report.categories")
        fleiss = FleissSerializer(source="report.fleiss")
        alpha = AgreementFigureSerializer(source="report.alpha", help_text="Krippendorff's alpha (nominal).")
        pairs = PairKappaSerializer(source="report.pairs", many=True)
        per_class = ClassAgreementSerializer(source="report.per_class", many=True)
        reference_origins = serializers.DictField(
            child=serializers.IntegerField(),
            help_text=f"Answered items with a gold label, by its origin ({', '.join(GoldLabel.Origin.values)}): "
            "the items behind `reference`; those of origin `adjudication` are the items behind "
            "`reference_adjudicated`.",
        )
        reference = ReferenceAgreementSerializer(
            source="report.reference",
            many=True,
            help_text="Each reviewer against the item's gold label as it stands, whatever its origin. Optimistic "
            "where the gold label was derived from reviews: it may be the reviewer's own answer.",
        )
        reference_adjudicated = ReferenceAgreementSerializer(
            many=True,
            help_text="Each reviewer against adjudicated gold only: the answered items whose gold label an "
            "adjudicator decided (an adjudicator never decides an item they answered). Those items went to "
            "adjudication because their answers disagreed or one was uncertain, so this describes the hard "
            "items. Empty when no answered item has been adjudicated.",
        )

    @extend_schema(
        operation_id="agreement_read",
        parameters=[InputSerializer],
        responses={200: OutputSerializer, **error_responses(400, 401, 403, 404)},
    )
    def get(self, request: Request, dataset_id: int) -> Response:
        params = self.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        agreement = dataset_agreement_for_user(
            user=request.user,
            dataset_id=dataset_id,
            guideline_version=params.validated_data.get("guideline_version") or None,
        )
        return Response(self.OutputSerializer(agreement).data)
