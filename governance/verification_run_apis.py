"""REST API for verifications run by a worker, as the audit page's "Verify" button runs them.

POST asks for one (202, the run; while one is queued or running, that run) and GET follows it:
status, progress (events walked of the chain's length) and, when done, what the walk found. The
outcome is also recorded in the trail (audit.verified), like the page's. A client that kept exported
checkpoints sends them with the POST (as `verify_audit --checkpoint FILE` takes them): such a run is
always a new one, checked against those documents. The older `POST audit/verification/`
(governance/audit_integrity_apis.py) walks in its request and is kept for existing clients.
Auditors only, like the page.
"""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from governance.audit_integrity_apis import exported_checkpoints_field
from governance.models import AuditVerificationRun
from governance.selectors import audit_verification_run_get_for_user
from governance.verification_runs import audit_verification_request
from workflow_site.access import Role, require_role
from workflow_site.api_schema import error_responses


def _help(name: str) -> str:
    return str(AuditVerificationRun._meta.get_field(name).help_text)


class VerificationRunSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=AuditVerificationRun.Status.choices)
    requested_by = serializers.CharField(
        source="requested_by.username", allow_null=True, default=None, help_text="Username; null: the system."
    )
    requested_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    attempts = serializers.IntegerField(help_text=_help("attempts"))
    events_total = serializers.IntegerField(help_text=_help("events_total"))
    events_checked = serializers.IntegerField(help_text=_help("events_checked"))
    result = serializers.JSONField(
        allow_null=True,
        help_text='Null until done; then {"ok", "events_checked", "chain_break": {"seq", "reason"} or null, '
        '"problems": [...], "checkpoints_checked", "exported_checked", "tombstones"}.',
    )
    error = serializers.CharField(help_text=_help("error"))
    status_url = serializers.SerializerMethodField(help_text="GET it until status is done or failed.")

    def get_status_url(self, run: AuditVerificationRun) -> str:
        return reverse("api_audit_verification_run", args=[run.pk])


def _data(run: AuditVerificationRun) -> dict[str, Any]:
    return VerificationRunSerializer(run).data


class VerificationRunCreateApi(APIView):
    class InputSerializer(serializers.Serializer):
        exported_checkpoints = exported_checkpoints_field()

    @extend_schema(
        request=InputSerializer,
        responses={202: VerificationRunSerializer, **error_responses(400, 401, 403)},
        description="Ask a worker to verify the whole chain and every stored checkpoint, as the audit page's "
        "button does (audit.verification_requested). Without exported checkpoints, while one is queued or running, "
        "that one is returned; with them, a new run is made. A malformed document is a 400 naming it, and asks "
        "for nothing.",
    )
    def post(self, request: Request) -> Response:
        require_role(request.user, Role.AUDITOR)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        documents = [_as_given(document) for document in data.validated_data["exported_checkpoints"]]
        run, _ = audit_verification_request(actor=request.user, exported_documents=documents)
        return Response(_data(run), status=status.HTTP_202_ACCEPTED)


def _as_given(document: dict[str, Any]) -> dict[str, Any]:
    """The document as the worker parses it again (exported_checkpoint_parse): without the serializer's parse."""
    return {key: value for key, value in document.items() if key not in ("parsed", "how_to_verify")}


class VerificationRunDetailApi(APIView):
    @extend_schema(responses={200: VerificationRunSerializer, **error_responses(401, 403, 404)})
    def get(self, request: Request, run_id: int) -> Response:
        return Response(_data(audit_verification_run_get_for_user(user=request.user, pk=run_id)))
