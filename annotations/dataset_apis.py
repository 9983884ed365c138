"""REST API for datasets themselves (issue 7, point 5): create one with its schema, list its items.

The item list pages by key (`after` = the last id seen), so page 10,000 costs what
page 1 costs, and never counts the items.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations.apis import DatasetListApi, ItemOutputSerializer
from annotations.datasets import FeatureInput, LabelInput, dataset_create
from annotations.models import Feature, Item
from annotations.selectors import dataset_get_for_user
from governance.audit import ReadPurpose, data_accesses_record
from workflow_site.access import MODEL_READ_ROLES, Role, require_role
from workflow_site.api_schema import error_responses

ITEM_PAGE_MAX = 500


class FeatureSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    dtype = serializers.ChoiceField(choices=Feature.Dtype.choices, default=Feature.Dtype.FLOAT)
    unit = serializers.CharField(max_length=40, required=False, allow_blank=True, default="")
    normal_min = serializers.FloatField(required=False, allow_null=True, default=None)
    normal_max = serializers.FloatField(required=False, allow_null=True, default=None)
    categories = serializers.ListField(
        child=serializers.CharField(allow_blank=True, trim_whitespace=False), required=False, default=list
    )
    is_sensitive = serializers.BooleanField(default=False)
    description = serializers.CharField(required=False, allow_blank=True, default="")


class LabelSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    display_name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class DatasetsApi(DatasetListApi):
    """GET lists the datasets you work on (DatasetListApi); POST creates one with its schema."""

    class InputSerializer(serializers.Serializer):
        """What the view parses: each feature and label is checked by `_valid`, so every error is
        flat and named by where it is (`features[2].dtype`), as the error schema documents."""

        name = serializers.CharField(max_length=200)
        slug = serializers.SlugField(max_length=80)
        description = serializers.CharField(required=False, allow_blank=True, default="")
        guideline_version = serializers.CharField(max_length=40, required=False, allow_blank=True, default="")
        reason_codes = serializers.JSONField(
            required=False, default=list, help_text='Why reviewers correct: [{"code": "margin", "text": "..."}].'
        )
        features = serializers.JSONField()
        labels = serializers.JSONField()

        def validate_features(self, value: object) -> list:
            if not isinstance(value, list):
                raise serializers.ValidationError("Give a list of features.")
            return value

        def validate_labels(self, value: object) -> list:
            if not isinstance(value, list):
                raise serializers.ValidationError("Give a list of label classes.")
            return value

    class DocumentedInputSerializer(InputSerializer):
        """The same body as the schema documents it: typed features and labels."""

        features = serializers.ListField(child=FeatureSerializer(), help_text="The columns, in order.")
        labels = serializers.ListField(child=LabelSerializer(), help_text="The label classes, in key order.")

    class CreatedSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        name = serializers.CharField()
        slug = serializers.CharField()
        guideline_version = serializers.CharField()
        reason_codes = serializers.JSONField()

    @extend_schema(
        operation_id="datasets_create",
        request=DocumentedInputSerializer,
        responses={201: CreatedSerializer, **error_responses(400, 401, 403)},
    )
    def post(self, request: Request) -> Response:
        require_role(request.user, Role.MODEL_ADMIN)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        features = [
            FeatureInput(**self._valid(FeatureSerializer, raw, f"features[{i}]"))
            for i, raw in enumerate(data.validated_data["features"])
        ]
        labels = [
            LabelInput(**self._valid(LabelSerializer, raw, f"labels[{i}]"))
            for i, raw in enumerate(data.validated_data["labels"])
        ]
        fields = {k: v for k, v in data.validated_data.items() if k not in {"features", "labels"}}
        dataset = dataset_create(user=request.user, features=features, labels=labels, **fields)
        return Response(self.CreatedSerializer(dataset).data, status=status.HTTP_201_CREATED)

    @staticmethod
    def _valid(serializer_class: type[serializers.Serializer], raw: object, where: str) -> dict:
        """Validate one nested object; its errors come out flat, named by where they are
        (`features[2].dtype`, `features[0].categories[1]`), as the error schema documents."""
        nested = serializer_class(data=raw)
        if not nested.is_valid():
            raise serializers.ValidationError(dict(_flat_errors(nested.errors, where)))
        return dict(nested.validated_data)


def _flat_errors(errors: object, where: str) -> list[tuple[str, list[str]]]:
    """DRF nests errors of list items as {index: [...]}: flatten them to one list of messages per path."""
    if isinstance(errors, dict):
        flat: list[tuple[str, list[str]]] = []
        for key, value in errors.items():
            path = f"{where}[{key}]" if str(key).isdigit() else f"{where}.{key}"
            flat += _flat_errors(value, path)
        return flat
    if isinstance(errors, list) and all(isinstance(message, str) for message in errors):
        return [(where, [str(message) for message in errors])]
    if isinstance(errors, list):
        return [pair for index, value in enumerate(errors) for pair in _flat_errors(value, f"{where}[{index}]")]
    return [(where, [str(errors)])]


class ItemListApi(APIView):
    class FilterSerializer(serializers.Serializer):
        queue_state = serializers.ChoiceField(choices=Item.QueueState.choices, required=False)
        predicted_label = serializers.CharField(required=False, help_text="Only items the champion gives this label.")
        max_confidence = serializers.FloatField(
            required=False, min_value=0, max_value=1, help_text="Only items predicted with at most this confidence."
        )
        after = serializers.IntegerField(required=False, min_value=0, help_text="The last id of the previous page.")
        limit = serializers.IntegerField(required=False, min_value=1, max_value=ITEM_PAGE_MAX, default=100)

    class OutputSerializer(serializers.Serializer):
        items = ItemOutputSerializer(many=True)
        next_after = serializers.IntegerField(
            allow_null=True, help_text="Pass as `after` for the next page; null on the last page."
        )

    @extend_schema(
        parameters=[FilterSerializer],
        responses={200: OutputSerializer, **error_responses(400, 401, 403, 404)},
    )
    def get(self, request: Request, dataset_id: int) -> Response:
        dataset = dataset_get_for_user(user=request.user, pk=dataset_id, roles=MODEL_READ_ROLES)
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        wanted = filters.validated_data
        items = Item.objects.filter(dataset=dataset, pk__gt=wanted.get("after", 0)).select_related("predicted_label")
        if "queue_state" in wanted:
            items = items.filter(queue_state=wanted["queue_state"])
        if "predicted_label" in wanted:
            items = items.filter(predicted_label__name=wanted["predicted_label"])
        if "max_confidence" in wanted:
            items = items.filter(predicted_confidence__lte=wanted["max_confidence"])
        limit = wanted["limit"]
        page = list(items.order_by("pk")[: limit + 1])
        more, page = len(page) > limit, page[:limit]
        data_accesses_record(user=request.user, items=page, purpose=ReadPurpose.API)
        return Response(
            {
                "items": ItemOutputSerializer(page, many=True).data,
                "next_after": page[-1].pk if more else None,
            }
        )
