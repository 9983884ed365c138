"""REST API for promotions and the audit trail."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations.selectors import dataset_get_for_user
from governance.audit_labels import audit_object_labels
from governance.forms import AuditFilterForm
from governance.models import AuditEvent, Signature
from governance.promotion_requests import promotion_submit, promotion_withdraw
from governance.promotions import promotion_decide, promotion_request_create
from governance.rollbacks import rollback_request_create
from governance.selectors import audit_events_for_user, promotion_get_for_user
from governance.signing import signature_verify
from models_app.selectors import model_version_get_for_user
from workflow_site.access import MODEL_READ_ROLES, Role
from workflow_site.api_schema import error_responses

# The API reads the same form as the auditor's page; these describe it in the schema.
_PARAMETER_TYPES = {"dataset": int, "date_from": OpenApiTypes.DATE, "date_to": OpenApiTypes.DATE}
AUDIT_FILTER_PARAMETERS = [
    OpenApiParameter(name, _PARAMETER_TYPES.get(name, str), description=str(field.help_text))
    for name, field in AuditFilterForm.base_fields.items()
]


class SignatureCheckSerializer(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=["verified", "record_changed", "record_missing", "unknown_record_type"],
        help_text="verified: the record still hashes to what was signed; record_changed: it does not.",
    )
    ok = serializers.BooleanField()
    current_hash = serializers.CharField(allow_null=True, help_text="The record's hash now (null if it is gone).")
    words = serializers.CharField(help_text="The check in words, e.g. “record changed since signing: hashes differ”.")


class SignatureOutputSerializer(serializers.Serializer):
    printed_name = serializers.CharField()
    meaning = serializers.CharField(help_text=str(Signature._meta.get_field("meaning").help_text))
    signed_at = serializers.DateTimeField()
    record_type = serializers.CharField()
    record_id = serializers.CharField()
    record_hash = serializers.CharField(help_text="sha256 of the record as signed.")
    check = serializers.SerializerMethodField(help_text="The signature verified against the record as it is now.")

    @extend_schema_field(SignatureCheckSerializer)
    def get_check(self, signature: Signature) -> dict[str, object]:
        return signature_verify(signature).as_dict()


class PromotionOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField(help_text="promotion, or rollback (the previous champion back).")
    model_version_id = serializers.IntegerField()
    status = serializers.CharField(help_text="draft, pending, approved, rejected or withdrawn.")
    request_signature = SignatureOutputSerializer(
        allow_null=True, help_text="The requester's signature (authored), made when the request was submitted."
    )
    signature = SignatureOutputSerializer(allow_null=True, help_text="The decision's signature.")
    submitted_at = serializers.DateTimeField(allow_null=True)
    withdrawn_at = serializers.DateTimeField(allow_null=True)
    withdrawal_reason = serializers.CharField()
    requested_by = serializers.CharField(source="requested_by.username")
    requested_at = serializers.DateTimeField()
    reason = serializers.CharField()
    decided_by = serializers.CharField(source="decided_by.username", allow_null=True, default=None)
    decided_at = serializers.DateTimeField(allow_null=True)
    gate_results = serializers.ListField(
        child=serializers.DictField(), help_text="The promotion gates as judged at the decision: gate, passed, detail."
    )
    override_reason = serializers.CharField(help_text="Set when approved over a failed gate (a signed override).")


_ACKNOWLEDGE_HELP = (
    "Set to true to go ahead although the version is retired, or worse than the current champion on a "
    "tracked metric beyond tolerance. Needed only then; without it such a request is answered 400 with "
    "the warnings under this field, and nothing changes."
)


_PASSWORD_HELP = "Your password, re-entered: it signs the request (meaning: authored). Not needed for a draft."
_DRAFT_HELP = "Save as a draft (no password; not offered for a decision) and submit it later."


class PromotionRequestCreateApi(APIView):
    """Request a promotion: signed and submitted (pending), or saved as a draft."""

    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField()
        acknowledge_regressions = serializers.BooleanField(required=False, default=False, help_text=_ACKNOWLEDGE_HELP)
        password = serializers.CharField(required=False, allow_blank=True, default="", help_text=_PASSWORD_HELP)
        draft = serializers.BooleanField(required=False, default=False, help_text=_DRAFT_HELP)

    @extend_schema(
        request=InputSerializer, responses={201: PromotionOutputSerializer, **error_responses(400, 401, 403, 404)}
    )
    def post(self, request: Request, model_version_id: int) -> Response:
        version = model_version_get_for_user(user=request.user, pk=model_version_id, roles=(Role.MODEL_ADMIN,))
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        promotion = promotion_request_create(
            model_version=version,
            user=request.user,
            reason=data.validated_data["reason"],
            acknowledge_regressions=data.validated_data["acknowledge_regressions"],
            password=data.validated_data["password"],
            draft=data.validated_data["draft"],
        )
        return Response(PromotionOutputSerializer(promotion).data, status=status.HTTP_201_CREATED)


class RollbackRequestCreateApi(APIView):
    """Request a rollback to the champion the current one replaced; decided like a promotion
    (POST promotion-requests/{id}/decision/ by a different model admin, signed)."""

    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField()
        acknowledge_regressions = serializers.BooleanField(
            required=False,
            default=False,
            help_text="Set to true to go ahead although the previous champion is worse than the current one on "
            "a tracked metric beyond tolerance; without it such a request is answered 400 with the warnings.",
        )
        password = serializers.CharField(required=False, allow_blank=True, default="", help_text=_PASSWORD_HELP)
        draft = serializers.BooleanField(required=False, default=False, help_text=_DRAFT_HELP)

    @extend_schema(
        request=InputSerializer, responses={201: PromotionOutputSerializer, **error_responses(400, 401, 403, 404)}
    )
    def post(self, request: Request, dataset_id: int) -> Response:
        dataset = dataset_get_for_user(user=request.user, pk=dataset_id, roles=(Role.MODEL_ADMIN,))
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        rollback = rollback_request_create(
            dataset_id=dataset.pk,
            user=request.user,
            reason=data.validated_data["reason"],
            acknowledge_regressions=data.validated_data["acknowledge_regressions"],
            password=data.validated_data["password"],
            draft=data.validated_data["draft"],
        )
        return Response(PromotionOutputSerializer(rollback).data, status=status.HTTP_201_CREATED)


class PromotionDecisionApi(APIView):
    class InputSerializer(serializers.Serializer):
        decision = serializers.ChoiceField(choices=["approve", "reject"])
        password = serializers.CharField(help_text="Your password, re-entered: it signs the decision.")
        reason = serializers.CharField(required=False, allow_blank=True, default="")
        acknowledge_regressions = serializers.BooleanField(
            required=False, default=False, help_text=_ACKNOWLEDGE_HELP.replace("such a request", "such an approval")
        )
        override_reason = serializers.CharField(
            required=False,
            allow_blank=True,
            default="",
            help_text="Needed to approve when a promotion gate fails: the approval is then signed as an override.",
        )

    @extend_schema(
        request=InputSerializer, responses={200: PromotionOutputSerializer, **error_responses(400, 401, 403, 404)}
    )
    def post(self, request: Request, pk: int) -> Response:
        promotion = promotion_get_for_user(user=request.user, pk=pk, roles=(Role.MODEL_ADMIN,))
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        decided = promotion_decide(
            request_id=promotion.pk,
            user=request.user,
            approve=data.validated_data["decision"] == "approve",
            password=data.validated_data["password"],
            reason=data.validated_data["reason"],
            acknowledge_regressions=data.validated_data["acknowledge_regressions"],
            override_reason=data.validated_data["override_reason"],
        )
        return Response(PromotionOutputSerializer(decided).data)


class PromotionDetailApi(APIView):
    """One promotion or rollback request, with its signatures checked against the records as they are now."""

    @extend_schema(responses={200: PromotionOutputSerializer, **error_responses(401, 403, 404)})
    def get(self, request: Request, pk: int) -> Response:
        promotion = promotion_get_for_user(user=request.user, pk=pk, roles=MODEL_READ_ROLES)
        return Response(PromotionOutputSerializer(promotion).data)


class PromotionSubmitApi(APIView):
    """Draft -> pending, by its requester, signed with their password (meaning: authored)."""

    class InputSerializer(serializers.Serializer):
        password = serializers.CharField(help_text="Your password, re-entered: it signs the request.")
        reason = serializers.CharField(
            required=False, help_text="A last change to the draft's reason, made as it is submitted."
        )
        acknowledge_regressions = serializers.BooleanField(required=False, default=False, help_text=_ACKNOWLEDGE_HELP)

    @extend_schema(
        request=InputSerializer, responses={200: PromotionOutputSerializer, **error_responses(400, 401, 403, 404)}
    )
    def post(self, request: Request, pk: int) -> Response:
        promotion = promotion_get_for_user(user=request.user, pk=pk, roles=(Role.MODEL_ADMIN,))
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        submitted = promotion_submit(
            request_id=promotion.pk,
            user=request.user,
            password=data.validated_data["password"],
            reason=data.validated_data.get("reason"),
            acknowledge_regressions=data.validated_data["acknowledge_regressions"],
        )
        return Response(PromotionOutputSerializer(submitted).data)


class PromotionWithdrawApi(APIView):
    """Draft or pending -> withdrawn, by its requester only, with a reason."""

    class InputSerializer(serializers.Serializer):
        withdrawal_reason = serializers.CharField(help_text="Why the request is withdrawn.")

    @extend_schema(
        request=InputSerializer, responses={200: PromotionOutputSerializer, **error_responses(400, 401, 403, 404)}
    )
    def post(self, request: Request, pk: int) -> Response:
        promotion = promotion_get_for_user(user=request.user, pk=pk, roles=(Role.MODEL_ADMIN,))
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        withdrawn = promotion_withdraw(
            request_id=promotion.pk, user=request.user, reason=data.validated_data["withdrawal_reason"]
        )
        return Response(PromotionOutputSerializer(withdrawn).data)


# The audit trail grows without bound: a client gets it page by page, and however
# large a `limit` it asks for, no page is larger than this.
AUDIT_PAGE_DEFAULT = 100
AUDIT_PAGE_MAX = 500


class AuditEventPagination(CursorPagination):
    """Keyset pages over `seq` (an opaque `cursor` in next/previous): no COUNT, no OFFSET,
    so page 10,000 of a million events costs what page 1 costs."""

    ordering = "-seq"
    page_size = AUDIT_PAGE_DEFAULT
    page_size_query_param = "limit"
    max_page_size = AUDIT_PAGE_MAX


# A ListAPIView only for its paging: drf-spectacular documents the paged envelope
# (next/previous/results) and the cursor/limit parameters of a list view
# that declares `pagination_class`; an APIView paging by hand is documented as a
# bare list.
class AuditEventListApi(ListAPIView):
    """Audit events, newest first, filtered like the auditor's audit page.

    Paged by key: follow `next` (an opaque cursor) for older events. 100 events
    a page unless `limit` asks for another number, and never more than 500,
    whatever it asks. No total is given: counting a million events on every
    page is what this avoids.
    """

    pagination_class = AuditEventPagination

    class OutputSerializer(serializers.Serializer):
        seq = serializers.IntegerField()
        created_at = serializers.DateTimeField()
        actor = serializers.CharField(source="actor_username")
        action = serializers.CharField()
        object_type = serializers.CharField()
        object_id = serializers.CharField()
        object_label = serializers.SerializerMethodField(
            help_text="The object as people know it: “item abc-17 in Tumours”, “model v3 in Tumours”, "
            "“promotion request #7 (v3) in Tumours”, “user alice”."
        )
        dataset_id = serializers.IntegerField(allow_null=True)
        before = serializers.JSONField(allow_null=True)
        after = serializers.JSONField(allow_null=True)
        reason = serializers.CharField()
        request_id = serializers.CharField()
        prev_hash = serializers.CharField()
        hash = serializers.CharField()

        def get_object_label(self, event: AuditEvent) -> str:
            return self.context["labels"][(event.object_type, event.object_id)].text

    serializer_class = OutputSerializer

    @extend_schema(
        parameters=AUDIT_FILTER_PARAMETERS,
        responses={200: OutputSerializer(many=True), **error_responses(400, 401, 403)},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        # The page's objects are named in one query (governance.audit_labels), not one per event.
        page = self.paginate_queryset(self.get_queryset()) or []
        context = {**self.get_serializer_context(), "labels": audit_object_labels(page)}
        return self.get_paginated_response(self.get_serializer(page, many=True, context=context).data)

    def get_queryset(self) -> QuerySet[AuditEvent]:
        form = AuditFilterForm(self.request.query_params)
        if not form.is_valid():
            raise serializers.ValidationError({field: list(messages) for field, messages in form.errors.items()})
        return audit_events_for_user(user=self.request.user, filters=form.to_filters())
