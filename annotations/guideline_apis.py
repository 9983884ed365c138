"""REST API for a dataset's labelling guideline (issue 8, point 5): read it, publish a new version."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
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
    """GET: the version reviews record now (null text when none was written) and every version's number.
    POST (model admins): publish a new version."""

    class InputSerializer(serializers.Serializer):
        text = serializers.CharField(max_length=MAX_TEXT_CHARS, trim_whitespace=False)
        change_note = serializers.CharField(max_length=MAX_NOTE_CHARS, required=False, allow_blank=True, default="")

    class OutputSerializer(serializers.Serializer):
        guideline_version = serializers.CharField(help_text="What reviews record now.")
        current = GuidelineVersionSerializer(allow_null=True, help_text="Its text; null when none was published.")
        versions = serializers.ListField(child=serializers.IntegerField(), help_text="Every published version.")

    @extend_schema(operation_id="guideline_read", responses={200: OutputSerializer, **error_responses(401, 403, 404)})
    def get(self, request: Request, dataset_id: int) -> Response:
        dataset = dataset_get_for_user(user=request.user, pk=dataset_id, roles=DATASET_READ_ROLES)
        return Response(self._output(dataset))

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

    def _output(self, dataset):  # type: ignore[no-untyped-def]
        current = guideline_current(dataset)
        versions = list(GuidelineVersion.objects.filter(dataset=dataset).values_list("version", flat=True))
        return self.OutputSerializer(
            {"guideline_version": dataset.guideline_version, "current": current, "versions": sorted(versions)}
        ).data
