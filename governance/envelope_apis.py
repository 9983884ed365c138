"""REST API for a dataset's change envelope (governance/envelope_services.py), as its page offers it: read the
versions with their signatures checked, draft the next one, sign one's own draft, approve someone else's."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations.selectors import dataset_get_for_user
from governance.apis import SignatureCheckSerializer
from governance.envelope_models import ChangeEnvelopeSignoff, ChangeEnvelopeVersion
from governance.envelope_services import envelope_version_approve, envelope_version_draft, envelope_version_sign
from governance.selectors import EnvelopeVersionRow, envelope_overview_get_for_user, envelope_version_get_for_user
from workflow_site.access import Role
from workflow_site.api_schema import error_responses


class SignoffSerializer(serializers.Serializer):
    signer = serializers.CharField(source="signer.username")
    printed_name = serializers.CharField(source="signature.printed_name")
    meaning = serializers.CharField(source="signature.meaning")
    signed_at = serializers.DateTimeField(source="signature.signed_at")
    record_hash = serializers.CharField(source="signature.record_hash", help_text="sha256 of the version as signed.")
    reason = serializers.CharField(help_text="The approver's comment, if any.")
    check = SignatureCheckSerializer(help_text="The signature verified against the version as it is now.")


class EnvelopeVersionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.IntegerField(help_text=str(ChangeEnvelopeVersion._meta.get_field("number").help_text))
    status = serializers.CharField(help_text="active, superseded, awaiting approval, a draft, …, in words.")
    clauses = serializers.JSONField(help_text=str(ChangeEnvelopeVersion._meta.get_field("clauses").help_text))
    change_summary = serializers.CharField()
    authored_by = serializers.CharField()
    created_at = serializers.DateTimeField()
    authored = SignoffSerializer(allow_null=True, help_text="The author's signature (meaning authored).")
    approval = SignoffSerializer(allow_null=True, help_text="Another model admin's approval; null until then.")


class EnvelopeSerializer(serializers.Serializer):
    dataset = serializers.IntegerField()
    active_number = serializers.IntegerField(allow_null=True, help_text="The version in force; null: none yet.")
    versions = EnvelopeVersionSerializer(many=True, help_text="Newest first.")


def _signoff(signoff: ChangeEnvelopeSignoff | None, checks: dict[int, Any]) -> dict[str, Any] | None:
    if signoff is None:
        return None
    return {
        "signer": signoff.signer,
        "signature": signoff.signature,
        "reason": signoff.reason,
        "check": checks[signoff.signature_id].as_dict(),
    }


def _version(row: EnvelopeVersionRow) -> dict[str, Any]:
    version = row.version
    return {
        "id": version.pk,
        "number": version.number,
        "status": row.status,
        "clauses": version.clauses,
        "change_summary": version.change_summary,
        "authored_by": version.authored_by.username,
        "created_at": version.created_at,
        "authored": _signoff(row.authored, row.checks),
        "approval": _signoff(row.approval, row.checks),
    }


def _one_version(version: ChangeEnvelopeVersion, *, user: Any) -> Response:
    """The version as the list shows it (read again: its sign-offs just changed)."""
    overview = envelope_overview_get_for_user(user=user, dataset_id=version.dataset_id)
    row = next(r for r in overview.rows if r.version.pk == version.pk)
    return Response(EnvelopeVersionSerializer(_version(row)).data)


_ONE_VERSION_RESPONSES = {200: EnvelopeVersionSerializer, **error_responses(400, 401, 403, 404)}


class EnvelopeApi(APIView):
    """GET: the dataset's envelope versions (model admins and auditors). POST: draft the next version."""

    class InputSerializer(serializers.Serializer):
        clauses = serializers.JSONField(
            help_text="The clauses (algorithms with hyperparameter ranges, label_sources, evaluation_sets, "
            "acceptance); validated against the catalogue, each error keyed by its path."
        )
        # Blank is the service's to refuse, so that it names every problem of the draft at once.
        change_summary = serializers.CharField(allow_blank=True, help_text="What this version changes and why.")

    @extend_schema(responses={200: EnvelopeSerializer, **error_responses(401, 403, 404)})
    def get(self, request: Request, dataset_id: int) -> Response:
        overview = envelope_overview_get_for_user(user=request.user, dataset_id=dataset_id)
        body = {
            "dataset": overview.dataset.pk,
            "active_number": overview.active.number if overview.active else None,
            "versions": [_version(row) for row in overview.rows],
        }
        return Response(EnvelopeSerializer(body).data)

    @extend_schema(
        request=InputSerializer, responses={201: EnvelopeVersionSerializer, **error_responses(400, 401, 403, 404)}
    )
    def post(self, request: Request, dataset_id: int) -> Response:
        dataset = dataset_get_for_user(user=request.user, pk=dataset_id, roles=(Role.MODEL_ADMIN,))
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        version = envelope_version_draft(
            dataset=dataset,
            user=request.user,
            clauses=data.validated_data["clauses"],
            change_summary=data.validated_data["change_summary"],
        )
        response = _one_version(version, user=request.user)
        response.status_code = status.HTTP_201_CREATED
        return response


class EnvelopeSignApi(APIView):
    """The author signs their draft (meaning authored), with their password."""

    class InputSerializer(serializers.Serializer):
        password = serializers.CharField(help_text="The signer's password (21 CFR Part 11 §11.200).")

    @extend_schema(
        request=InputSerializer, responses={200: EnvelopeVersionSerializer, **error_responses(400, 401, 403, 404)}
    )
    def post(self, request: Request, pk: int) -> Response:
        version = envelope_version_get_for_user(user=request.user, pk=pk, roles=(Role.MODEL_ADMIN,))
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        envelope_version_sign(version=version, user=request.user, password=data.validated_data["password"])
        return _one_version(version, user=request.user)


class EnvelopeApproveApi(APIView):
    """Another model admin approves a signed version (meaning approval): it becomes the active one."""

    class InputSerializer(serializers.Serializer):
        password = serializers.CharField(help_text="The approver's password (21 CFR Part 11 §11.200).")
        reason = serializers.CharField(required=False, allow_blank=True, default="", help_text="A comment, if any.")

    @extend_schema(
        request=InputSerializer, responses={200: EnvelopeVersionSerializer, **error_responses(400, 401, 403, 404)}
    )
    def post(self, request: Request, pk: int) -> Response:
        version = envelope_version_get_for_user(user=request.user, pk=pk, roles=(Role.MODEL_ADMIN,))
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        envelope_version_approve(
            version=version,
            user=request.user,
            password=data.validated_data["password"],
            reason=data.validated_data["reason"],
        )
        return _one_version(version, user=request.user)
