"""REST API for an item's history (the auditor's item page, governance/views.py::item_history).

Everything about one item: its data and provenance, the predictions made for it, its reviews, its gold
label, the training snapshots holding it, its audit events and the last reads of its data. Auditors only,
as the page; the read is logged like the page's (DataAccess), with the API as its purpose.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from governance.audit import ReadPurpose, data_access_record
from governance.selectors import item_history_for_user
from workflow_site.api_schema import error_responses


class ItemHistoryItemSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    external_id = serializers.CharField()
    dataset_id = serializers.IntegerField()
    queue_state = serializers.CharField()
    values = serializers.JSONField(help_text="Feature name → value; empty once retention removed the data.")
    source_file = serializers.CharField()
    source_row = serializers.IntegerField()
    batch_id = serializers.IntegerField(help_text="The import that brought it in.")
    file_sha256 = serializers.CharField(source="batch.file_sha256", help_text="sha256 of the imported file.")
    observed_at = serializers.DateTimeField(allow_null=True)
    content_hash = serializers.CharField(help_text="sha256 of the row's canonical content (kept after retention).")
    feature_hash = serializers.CharField(allow_blank=True)
    purged_at = serializers.DateTimeField(allow_null=True, help_text="When retention removed its data; null: here.")


class ItemHistoryFeatureSerializer(serializers.Serializer):
    name = serializers.CharField()
    dtype = serializers.CharField()
    unit = serializers.CharField(allow_blank=True)


class ItemHistoryPredictionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    model_version_id = serializers.IntegerField()
    model_version = serializers.IntegerField(source="model_version.version", help_text="Its version number.")
    artifact_sha256 = serializers.CharField(source="model_version.artifact_sha256")
    label = serializers.CharField(source="label.name")
    confidence = serializers.FloatField()


class ItemHistoryReviewSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    reviewer = serializers.CharField(source="reviewer.username")
    decision = serializers.CharField()
    label = serializers.CharField(source="label.name", allow_null=True, default=None)
    reason = serializers.CharField(allow_blank=True)
    reason_removed_at = serializers.DateTimeField(
        allow_null=True, help_text="When retention emptied the free-text reason; null: it is as written."
    )
    reason_code = serializers.CharField(allow_blank=True)
    mode = serializers.CharField(help_text="open, or blind (the prediction hidden until the reviewer answered).")
    shown_label = serializers.CharField(source="shown_label.name", allow_null=True, default=None)
    shown_confidence = serializers.FloatField(allow_null=True)
    selection_strategy = serializers.CharField(help_text="Why the queue picked the item.")
    selection_score = serializers.FloatField(allow_null=True)
    guideline_version = serializers.CharField()
    supersedes_id = serializers.IntegerField(allow_null=True)


class ItemHistoryGoldLabelSerializer(serializers.Serializer):
    label = serializers.CharField(source="label.name")
    origin = serializers.CharField()
    reviewer = serializers.CharField(source="review.reviewer.username", allow_null=True, default=None)
    updated_at = serializers.DateTimeField()


class ItemHistorySnapshotSerializer(serializers.Serializer):
    snapshot_id = serializers.IntegerField()
    content_hash = serializers.CharField(source="snapshot.content_hash")
    label = serializers.CharField(source="label.name", help_text="Its label in that snapshot.")


class ItemHistoryEventSerializer(serializers.Serializer):
    seq = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    actor = serializers.CharField(source="actor_username")
    action = serializers.CharField()
    before = serializers.JSONField(allow_null=True)
    after = serializers.JSONField(allow_null=True)
    reason = serializers.CharField(allow_blank=True)
    request_id = serializers.CharField(allow_blank=True)
    hash = serializers.CharField()


class ItemHistoryAccessSerializer(serializers.Serializer):
    accessed_at = serializers.DateTimeField()
    user = serializers.CharField(source="user.username")
    purpose = serializers.CharField()
    served_by = serializers.CharField(allow_blank=True)
    request_id = serializers.CharField(allow_blank=True)


class ItemHistoryApi(APIView):
    """Everything about one item, as its history page shows it. Auditors; the read is logged."""

    class OutputSerializer(serializers.Serializer):
        item = ItemHistoryItemSerializer()
        features = ItemHistoryFeatureSerializer(many=True)
        gold_label = ItemHistoryGoldLabelSerializer(allow_null=True)
        reviews = ItemHistoryReviewSerializer(many=True, help_text="Oldest first.")
        predictions = ItemHistoryPredictionSerializer(many=True, help_text="Oldest first.")
        snapshots = ItemHistorySnapshotSerializer(many=True, help_text="The training snapshots holding it.")
        events = ItemHistoryEventSerializer(many=True, help_text="Its audit events, oldest first.")
        accesses = ItemHistoryAccessSerializer(many=True, help_text="The 50 latest reads of its data.")

    @extend_schema(responses={200: OutputSerializer, **error_responses(401, 403, 404)})
    def get(self, request: Request, item_id: int) -> Response:
        history = item_history_for_user(user=request.user, item_id=item_id)
        data_access_record(user=request.user, item=history["item"], purpose=ReadPurpose.API)
        return Response(self.OutputSerializer(history).data)
