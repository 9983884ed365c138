"""REST API for what the promotions page does beyond one request (governance/views.py): the dataset's list of
requests, a draft's edit, and the promotion gates (issue 10).

The request itself, its decision, submission and withdrawal are in governance/apis.py; these views use its
output serializers, so a request reads the same from every endpoint.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations.selectors import dataset_get_for_user
from governance.apis import PromotionOutputSerializer, SignatureCheckSerializer, SignatureOutputSerializer
from governance.gates import GATE_FIELDS, gates_for, promotion_gates_update
from governance.models import PromotionGates, PromotionRequest, Signature
from governance.promotion_requests import promotion_draft_edit
from governance.selectors import PROMOTION_PAGE_SIZE, promotion_get_for_user, promotion_requests_page
from governance.signing import signature_checks_for
from workflow_site.access import MODEL_READ_ROLES, Role
from workflow_site.api_schema import error_responses


def _gate_help(name: str) -> str:
    return str(PromotionGates._meta.get_field(name).help_text)


class PromotionGatesSerializer(serializers.Serializer):
    min_holdout_accuracy = serializers.FloatField(allow_null=True, help_text=_gate_help("min_holdout_accuracy"))
    max_regression_points = serializers.FloatField(help_text=_gate_help("max_regression_points"))
    max_subgroup_regression_points = serializers.FloatField(help_text=_gate_help("max_subgroup_regression_points"))
    max_ece = serializers.FloatField(allow_null=True, help_text=_gate_help("max_ece"))
    paired_test_not_worse = serializers.BooleanField(help_text=_gate_help("paired_test_not_worse"))


class PromotionGatesApi(APIView):
    """GET: a dataset's promotion gates (the defaults until a model admin sets them). PUT: set them all, as the
    promotions page's form does (model admins of the dataset); audited as promotion_gates.updated."""

    class InputSerializer(PromotionGatesSerializer):
        """Every gate, as GET gives them: null switches an optional gate off. Ranges are checked by the service
        (fractions 0–1, points 0–100), each error under its field, and nothing changes."""

    class OutputSerializer(PromotionGatesSerializer):
        dataset = serializers.IntegerField(source="dataset_id")
        updated_at = serializers.DateTimeField(allow_null=True, help_text="null: never set (the defaults).")

    @extend_schema(responses={200: OutputSerializer, **error_responses(401, 403, 404)})
    def get(self, request: Request, dataset_id: int) -> Response:
        dataset = dataset_get_for_user(user=request.user, pk=dataset_id, roles=MODEL_READ_ROLES)
        return Response(self.OutputSerializer(gates_for(dataset)).data)

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer, **error_responses(400, 401, 403, 404)})
    def put(self, request: Request, dataset_id: int) -> Response:
        dataset = dataset_get_for_user(user=request.user, pk=dataset_id, roles=(Role.MODEL_ADMIN,))
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = {name: data.validated_data[name] for name in GATE_FIELDS}
        gates = promotion_gates_update(dataset=dataset, user=request.user, values=values)
        return Response(self.OutputSerializer(gates).data)


# A list checks every row's signatures in a few queries (signature_checks_for), not a few per signature.
class PromotionListSignatureSerializer(SignatureOutputSerializer):
    @extend_schema_field(SignatureCheckSerializer)
    def get_check(self, signature: Signature) -> dict[str, object]:
        return self.context["checks"][signature.pk].as_dict()


class PromotionListRowSerializer(PromotionOutputSerializer):
    request_signature = PromotionListSignatureSerializer(
        allow_null=True, help_text="The requester's signature (authored), made when the request was submitted."
    )
    signature = PromotionListSignatureSerializer(allow_null=True, help_text="The decision's signature.")


class PromotionListApi(APIView):
    """A dataset's promotion and rollback requests, newest first, as the promotions page lists them: drafts are
    their requester's alone. Model admins of the dataset and auditors."""

    class InputSerializer(serializers.Serializer):
        status = serializers.ChoiceField(
            choices=PromotionRequest.Status.values,
            required=False,
            allow_blank=True,
            help_text="Only requests in this state (empty: all).",
        )
        before = serializers.IntegerField(
            min_value=1, required=False, help_text="The next page: the `older` id the previous page gave."
        )

    class OutputSerializer(serializers.Serializer):
        results = PromotionListRowSerializer(many=True, help_text=f"At most {PROMOTION_PAGE_SIZE}.")
        older = serializers.IntegerField(
            allow_null=True, help_text="Give it as `before` for the next (older) page; null on the last."
        )

    @extend_schema(
        parameters=[InputSerializer], responses={200: OutputSerializer, **error_responses(400, 401, 403, 404)}
    )
    def get(self, request: Request, dataset_id: int) -> Response:
        dataset = dataset_get_for_user(user=request.user, pk=dataset_id, roles=MODEL_READ_ROLES)
        data = self.InputSerializer(data=request.query_params)
        data.is_valid(raise_exception=True)
        page = promotion_requests_page(
            user=request.user,
            dataset=dataset,
            status=data.validated_data.get("status", ""),
            before=data.validated_data.get("before"),
        )
        checks = signature_checks_for(s for r in page.requests for s in (r.signature, r.request_signature) if s)
        body: dict[str, Any] = {"results": page.requests, "older": page.older}
        return Response(self.OutputSerializer(body, context={"checks": checks}).data)


class PromotionDraftEditApi(APIView):
    """Change a draft's reason: its requester only, while it is a draft (audited as <kind>.draft_edited)."""

    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(help_text="Why this version should go live.")

    @extend_schema(
        request=InputSerializer, responses={200: PromotionOutputSerializer, **error_responses(400, 401, 403, 404)}
    )
    def post(self, request: Request, pk: int) -> Response:
        promotion = promotion_get_for_user(user=request.user, pk=pk, roles=(Role.MODEL_ADMIN,))
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        edited = promotion_draft_edit(request_id=promotion.pk, user=request.user, reason=data.validated_data["reason"])
        return Response(PromotionOutputSerializer(edited).data)
