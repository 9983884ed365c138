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

from annotations.apis import PREDICTION_FIELDS, DatasetListApi, ItemOutputSerializer
from annotations.datasets import FeatureInput, LabelInput, dataset_create
from annotations.item_list_json import item_list_rows_json
from annotations.item_search import (
    ITEM_LIST_MAX,
    SELECTION_STRATEGIES,
    SORTS,
    ItemFilters,
    ItemSearchInvalid,
    item_list_scope_for_user,
    items_search_for_user,
)
from annotations.models import Feature, GoldLabel, Item
from governance.audit import ReadPurpose, data_accesses_record
from workflow_site.access import Role, require_role
from workflow_site.api_schema import error_responses

ITEM_PAGE_MAX = ITEM_LIST_MAX


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


class ItemListRowSerializer(ItemOutputSerializer):
    """An item as the review API gives it, plus what the items page's row shows (read from an ItemApiRow)."""

    predicted_label = serializers.CharField(source="predicted_label_name", allow_null=True)

    queue_state = serializers.ChoiceField(choices=Item.QueueState.choices, help_text="Where it is in the queue.")
    gold_label = serializers.CharField(
        source="gold_label_name", allow_null=True, help_text="The label class it has for training; null: none."
    )
    gold_origin = serializers.ChoiceField(
        choices=GoldLabel.Origin.choices, allow_null=True, help_text="Where the gold label came from; null: none."
    )
    answers_count = serializers.IntegerField(
        help_text="Reviewers whose answer currently counts toward the dataset's overlap."
    )
    last_reviewed_at = serializers.DateTimeField(
        allow_null=True,
        help_text="When it was last reviewed; for a reviewer, when they last answered it. Null: never.",
    )


class ItemListApi(APIView):
    """A dataset's items, filtered and sorted, paged by key (annotations/item_search.py, as the items page).

    Whom the page serves, as it serves them: model admins, adjudicators and auditors see every
    item; a reviewer sees only the items they answered themselves, and a `reviewer` filter
    naming someone else is a 400 (the selector's rule). Every read is logged (purpose "api").
    """

    # The API's parameter names for the selector's (only the queue state differs, for compatibility).
    _PARAMETER = {"state": "queue_state"}

    class FilterSerializer(serializers.Serializer):
        queue_state = serializers.ChoiceField(choices=Item.QueueState.choices, required=False)
        gold_label = serializers.CharField(required=False, help_text="Only items whose gold label is this class.")
        predicted_label = serializers.CharField(required=False, help_text="Only items the champion gives this label.")
        min_confidence = serializers.FloatField(
            required=False, min_value=0, max_value=1, help_text="Only items predicted with at least this confidence."
        )
        max_confidence = serializers.FloatField(
            required=False, min_value=0, max_value=1, help_text="Only items predicted with at most this confidence."
        )
        strategy = serializers.ChoiceField(
            choices=SELECTION_STRATEGIES, required=False, help_text="Only items with a review the queue picked so."
        )
        reviewer = serializers.IntegerField(
            required=False,
            min_value=1,
            help_text="Only items this user reviewed. A reviewer may give only their own id (they see no others).",
        )
        disagreement = serializers.BooleanField(
            required=False, default=False, help_text="Only items awaiting adjudication or adjudicated."
        )
        flagged = serializers.BooleanField(
            required=False, default=False, help_text="Only items with a review flagged for follow-up."
        )
        observed_from = serializers.DateField(required=False, help_text="Observed on or after this day.")
        observed_to = serializers.DateField(required=False, help_text="Observed on or before this day.")
        reviewed_from = serializers.DateField(required=False, help_text="With a review made on or after this day.")
        reviewed_to = serializers.DateField(required=False, help_text="With a review made on or before this day.")
        sort = serializers.ChoiceField(choices=list(SORTS), required=False, default="id")
        after = serializers.CharField(
            required=False, max_length=120, help_text="`next_after` of the previous page (an id when sorting by id)."
        )
        before = serializers.CharField(
            required=False, max_length=120, help_text="`previous_before` of the next page: the page before it."
        )
        limit = serializers.IntegerField(required=False, min_value=1, max_value=ITEM_PAGE_MAX, default=100)

    class OutputSerializer(serializers.Serializer):
        items = ItemListRowSerializer(many=True)
        next_after = serializers.JSONField(
            allow_null=True,
            help_text="Pass as `after` for the next page (a whole number when sorting by id); null on the last page.",
        )
        previous_before = serializers.CharField(
            allow_null=True, help_text="Pass as `before` for the previous page; null on the first."
        )

    @extend_schema(
        parameters=[FilterSerializer],
        responses={200: OutputSerializer, **error_responses(400, 401, 403, 404)},
    )
    def get(self, request: Request, dataset_id: int) -> Response:
        # Access first (as the page), so someone outside the dataset gets a 403 whatever they ask for.
        scope = item_list_scope_for_user(user=request.user, dataset_id=dataset_id)
        params = self.FilterSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        wanted = params.validated_data
        filters = ItemFilters(
            state=wanted.get("queue_state", ""),
            gold_label=wanted.get("gold_label", ""),
            predicted_label=wanted.get("predicted_label", ""),
            min_confidence=wanted.get("min_confidence"),
            max_confidence=wanted.get("max_confidence"),
            strategy=wanted.get("strategy", ""),
            reviewer_id=wanted.get("reviewer"),
            disagreement=wanted["disagreement"],
            flagged=wanted["flagged"],
            observed_from=wanted.get("observed_from"),
            observed_to=wanted.get("observed_to"),
            reviewed_from=wanted.get("reviewed_from"),
            reviewed_to=wanted.get("reviewed_to"),
        )
        try:
            page = items_search_for_user(
                user=request.user,
                dataset_id=dataset_id,
                filters=filters,
                sort=wanted["sort"],
                after=wanted.get("after"),
                before=wanted.get("before"),
                limit=wanted["limit"],
                full_rows=True,
                scope=scope,
            )
        except ItemSearchInvalid as problem:
            raise serializers.ValidationError(
                {self._PARAMETER.get(name, name): [message] for name, message in problem.errors.items()}
            ) from None
        data_accesses_record(user=request.user, items=page.items, purpose=ReadPurpose.API)
        next_after: str | int | None = page.next_after
        if next_after is not None and page.sort == "id":
            next_after = int(next_after)  # as before the other sorts existed
        rows = item_list_rows_json(page.items)  # ItemListRowSerializer's output, built directly
        if page.scope.model_hidden:  # the stop switch: a reviewer sees no prediction here either
            for row in rows:
                row.update(dict.fromkeys(PREDICTION_FIELDS))
        return Response(
            {
                "items": rows,
                "next_after": next_after,
                "previous_before": page.previous_before,
            }
        )
