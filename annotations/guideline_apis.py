"""REST API for a dataset's labelling guideline (issue 8, point 5): read it (or an earlier version),
preview a draft, publish a new version; the same rules and rendering as the guideline page."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations.guidelines import (
    MAX_NOTE_CHARS,
    MAX_TEXT_CHARS,
    guideline_current,
    guideline_publish,
    guideline_render,
)
from annotations.models import GuidelineVersion
from annotations.selectors import dataset_get_for_user
from workflow_site.access import DATASET_READ_ROLES, Role
from workflow_site.api_schema import error_responses


class GuidelineVersionSerializer(serializers.Serializer):
    version = serializers.IntegerField()
    text = serializers.CharField(help_text="The guideline in Markdown.")
    html = serializers.SerializerMethodField(help_text="The text rendered and sanitised, as the page shows it.")
    text_sha256 = serializers.CharField()
    change_note = serializers.CharField()
    published_by = serializers.CharField(source="published_by.get_username")
    published_at = serializers.DateTimeField()

    def get_html(self, obj: GuidelineVersion) -> str:
        return str(guideline_render(obj.text))


class GuidelineApi(APIView):
    """GET: the version reviews record now (null text when none was written), every version's number,
    and `?version=N`'s text (as the page's link to an earlier version). POST (model admins): publish a new version."""

    class QuerySerializer(serializers.Serializer):
        # The column is a PositiveIntegerField: a larger number would be a database error, not a 404.
        version = serializers.IntegerField(
            required=False,
            min_value=1,
            max_value=2**31 - 1,
            help_text="Also give this published version's text (as `shown`); 404 when there is no such version.",
        )

    class InputSerializer(serializers.Serializer):
        text = serializers.CharField(max_length=MAX_TEXT_CHARS, trim_whitespace=False)
        change_note = serializers.CharField(max_length=MAX_NOTE_CHARS, required=False, allow_blank=True, default="")

    class OutputSerializer(serializers.Serializer):
        guideline_version = serializers.CharField(help_text="What reviews record now.")
        current = GuidelineVersionSerializer(allow_null=True, help_text="Its text; null when none was published.")
        versions = serializers.ListField(child=serializers.IntegerField(), help_text="Every published version.")
        shown = GuidelineVersionSerializer(
            allow_null=True,
            help_text="The version asked for with `?version=N`; without it, the one in force (as `current`).",
        )

    @extend_schema(
        operation_id="guideline_read",
        parameters=[QuerySerializer],
        responses={200: OutputSerializer, **error_responses(400, 401, 403, 404)},
    )
    def get(self, request: Request, dataset_id: int) -> Response:
        dataset = dataset_get_for_user(user=request.user, pk=dataset_id, roles=DATASET_READ_ROLES)
        query = self.QuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        current = guideline_current(dataset)
        versions = sorted(GuidelineVersion.objects.filter(dataset=dataset).values_list("version", flat=True))
        shown = current
        wanted = query.validated_data.get("version")
        if wanted is not None:
            shown = (
                GuidelineVersion.objects.filter(dataset=dataset, version=wanted).select_related("published_by").first()
            )
            if shown is None:
                published = ", ".join(map(str, versions)) or "none yet"
                raise NotFound(
                    f"There is no version {wanted} of this guideline (the `version` parameter); published: {published}."
                )
        output = {"guideline_version": dataset.guideline_version, "current": current, "versions": versions}
        return Response(self.OutputSerializer({**output, "shown": shown}).data)

    @extend_schema(
        operation_id="guideline_publish",
        request=InputSerializer,
        responses={201: GuidelineVersionSerializer, **error_responses(400, 401, 403, 404)},
    )
    def post(self, request: Request, dataset_id: int) -> Response:
        dataset = dataset_get_for_user(user=request.user, pk=dataset_id, roles=(Role.MODEL_ADMIN,))
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        published = guideline_publish(dataset=dataset, user=request.user, **data.validated_data)
        return Response(GuidelineVersionSerializer(published).data, status=status.HTTP_201_CREATED)


class GuidelinePreviewApi(APIView):
    """POST (model admins): a draft rendered and sanitised as the page's preview shows it.

    Saves nothing and changes nothing, so nothing is audited; publishing is GuidelineApi's POST.
    """

    class InputSerializer(serializers.Serializer):
        # Trimmed, as publishing trims it (guideline_publish): the preview is of the text that would be published.
        text = serializers.CharField(max_length=MAX_TEXT_CHARS, help_text="The draft, in Markdown.")

    class OutputSerializer(serializers.Serializer):
        html = serializers.CharField(help_text="The text rendered and sanitised, as it would be published.")

    @extend_schema(
        operation_id="guideline_preview",
        request=InputSerializer,
        responses={200: OutputSerializer, **error_responses(400, 401, 403, 404)},
    )
    def post(self, request: Request, dataset_id: int) -> Response:
        # Model admins only, as on the page: the preview is the first step of publishing.
        dataset_get_for_user(user=request.user, pk=dataset_id, roles=(Role.MODEL_ADMIN,))
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(self.OutputSerializer({"html": str(guideline_render(data.validated_data["text"]))}).data)
