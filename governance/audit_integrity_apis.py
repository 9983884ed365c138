"""REST API for the audit trail's integrity (issue 10): checkpoints, verification, Merkle proofs.

What an auditor sees or runs in the UI, and what the operator's commands print, for a program:

- the signed checkpoints (`manage.py audit_checkpoint`), one by one and as the exported, signed JSON
  document a third party keeps and checks without Loupe (governance/checkpoint_signing.py);
- the integrity line every auditor page shows (governance/checkpoints.py::audit_integrity_status);
- a verification of the whole trail, as the audit page's "Verify" button runs it, recorded in the trail
  (`audit.verified`) like the page's, and optionally against exported checkpoints the client kept, as
  `manage.py verify_audit --checkpoint FILE` does; and the last verification's result;
- inclusion and consistency proofs (`manage.py audit_proof`), and the check of one.

Auditors only, like the pages. Making a checkpoint is not offered: no page does it (the beat task and the
operator's command do), and an auditor changes nothing.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.generics import ListAPIView
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from governance.audit_exports import checkpoints_for_user
from governance.audit_proofs import audit_consistency_proof, audit_inclusion_proof, proof_document_verify
from governance.checkpoint_signing import STATEMENT_TYPE, exported_checkpoint_parse
from governance.checkpoints import (
    VERIFIED_ACTION,
    audit_integrity_status,
    audit_trail_verify,
    audit_verification_record,
    checkpoint_export,
)
from governance.models import AuditCheckpoint
from governance.selectors import AuditFilters, audit_events_for_user
from governance.verification_runs import MAX_EXPORTED_CHECKPOINTS
from workflow_site.access import Role, require_role
from workflow_site.api_schema import error_responses


def _field_help(name: str) -> str:
    return str(AuditCheckpoint._meta.get_field(name).help_text)


class CheckpointSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    tree_size = serializers.IntegerField(help_text=_field_help("tree_size"))
    root_hash = serializers.CharField(help_text=_field_help("root_hash"))
    last_seq = serializers.IntegerField(help_text=_field_help("last_seq"))
    last_event_hash = serializers.CharField(help_text=_field_help("last_event_hash"))
    created_at = serializers.DateTimeField(help_text=_field_help("created_at"))
    key_fingerprint = serializers.CharField(help_text=_field_help("key_fingerprint"))
    public_key = serializers.CharField(help_text=_field_help("public_key"))
    signature = serializers.CharField(help_text=_field_help("signature"))


class CheckpointStatementSerializer(serializers.Serializer):
    """What is signed: canonical JSON of these keys (sorted, no whitespace, UTF-8)."""

    type = serializers.CharField(help_text=f"Always {STATEMENT_TYPE}.")
    tree_algorithm = serializers.CharField()
    signature_algorithm = serializers.CharField()
    tree_size = serializers.IntegerField()
    root_hash = serializers.CharField()
    last_seq = serializers.IntegerField()
    last_event_hash = serializers.CharField()
    created_at = serializers.CharField(help_text="As signed (the chain's timestamp format), not reformatted.")
    key_fingerprint = serializers.CharField()


class CheckpointDocumentSerializer(serializers.Serializer):
    """An exported checkpoint: what `manage.py audit_checkpoint --export` writes, byte for byte the same JSON."""

    statement = CheckpointStatementSerializer()
    signature = serializers.CharField(help_text="Ed25519 signature over the statement (base64).")
    public_key = serializers.CharField(help_text="The signing key's public half (base64, raw 32 bytes).")
    how_to_verify = serializers.CharField()


# Checkpoints accrue (one an hour by default): paged by key like the audit events, newest first.
class CheckpointPagination(CursorPagination):
    ordering = "-tree_size"
    page_size = 100
    page_size_query_param = "limit"
    max_page_size = 500


class CheckpointListApi(ListAPIView):
    """The signed checkpoints of the audit trail, newest (largest) first; follow `next` for older ones."""

    pagination_class = CheckpointPagination
    serializer_class = CheckpointSerializer

    @extend_schema(responses={200: CheckpointSerializer(many=True), **error_responses(401, 403)})
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> Any:
        return checkpoints_for_user(user=self.request.user)


def _checkpoint(request: Request, pk: int) -> AuditCheckpoint:
    # The role first (checkpoints_for_user), so a non-auditor gets a 403 whether or not the id exists.
    checkpoint = checkpoints_for_user(user=request.user).filter(pk=pk).first()
    if checkpoint is None:
        raise Http404("No such checkpoint.")
    return checkpoint


class CheckpointDetailApi(APIView):
    @extend_schema(responses={200: CheckpointSerializer, **error_responses(401, 403, 404)})
    def get(self, request: Request, pk: int) -> Response:
        return Response(CheckpointSerializer(_checkpoint(request, pk)).data)


class CheckpointDocumentApi(APIView):
    """The checkpoint as the signed JSON document to keep outside Loupe's database; give it back to
    POST audit/verification/ (exported_checkpoints) or check it with any Ed25519 and SHA-256 library."""

    @extend_schema(responses={200: CheckpointDocumentSerializer, **error_responses(401, 403, 404)})
    def get(self, request: Request, pk: int) -> Response:
        return Response(checkpoint_export(_checkpoint(request, pk)))


class IntegrityStatusApi(APIView):
    """The line every auditor page shows: the last signed checkpoint and the last verification."""

    class OutputSerializer(serializers.Serializer):
        checkpoint = CheckpointSerializer(allow_null=True, help_text="The newest checkpoint; null: none yet.")
        signature_ok = serializers.BooleanField(
            allow_null=True,
            help_text="The newest checkpoint's signature verifies, by a trusted key; null: there is no checkpoint, "
            "so there is no signature to check (not a failed check).",
        )
        verified_at = serializers.DateTimeField(allow_null=True, help_text="The last verification; null: never.")
        verified_ok = serializers.BooleanField(allow_null=True, help_text="Whether it found no problem.")

    @extend_schema(responses={200: OutputSerializer, **error_responses(401, 403)})
    def get(self, request: Request) -> Response:
        require_role(request.user, Role.AUDITOR)
        integrity = audit_integrity_status()
        # Without a checkpoint there is no signature: null, not false (false would read as a failed check).
        return Response(
            self.OutputSerializer(
                {
                    "checkpoint": integrity.checkpoint,
                    "signature_ok": integrity.signature_ok if integrity.checkpoint is not None else None,
                    "verified_at": integrity.verified_at,
                    "verified_ok": integrity.verified_ok,
                }
            ).data
        )


class ExportedCheckpointInputSerializer(serializers.Serializer):
    """An exported checkpoint document, as GET audit/checkpoints/{id}/document/ gives it."""

    statement = serializers.DictField(help_text=f"The signed statement (type {STATEMENT_TYPE}).")
    signature = serializers.CharField()
    public_key = serializers.CharField()
    how_to_verify = serializers.CharField(required=False, help_text="Ignored.")
    leaf_hashes = serializers.CharField(
        required=False,
        help_text="Optional (audit_checkpoint --export --with-leaves): every covered event's hash, so that a"
        " rewrite is located at its first event.",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        try:
            attrs["parsed"] = exported_checkpoint_parse(attrs)
        except ValueError as exc:
            raise serializers.ValidationError({"statement": [str(exc)]}) from exc
        return attrs


class ChainBreakSerializer(serializers.Serializer):
    seq = serializers.IntegerField(help_text="The first event whose link does not verify.")
    reason = serializers.CharField()


class VerificationSerializer(serializers.Serializer):
    ok = serializers.BooleanField(help_text="No broken link and no checkpoint problem.")
    events_checked = serializers.IntegerField(help_text="Events whose links verified (before the break, if any).")
    chain_break = ChainBreakSerializer(allow_null=True)
    problems = serializers.ListField(
        child=serializers.CharField(), help_text="Checkpoint problems (stored, then exported), oldest first."
    )
    checkpoints_checked = serializers.IntegerField()
    exported_checked = serializers.IntegerField()
    tombstones = serializers.IntegerField(
        help_text="Events whose payload retention removed: their headers and payload digests verified."
    )
    last_checkpoint = CheckpointSerializer(allow_null=True)


class LastVerificationSerializer(serializers.Serializer):
    """The newest `audit.verified` event: when, by whom, and what it found."""

    event_seq = serializers.IntegerField(source="seq")
    verified_at = serializers.DateTimeField(source="created_at")
    actor = serializers.CharField(source="actor_username", help_text="Empty for the command or a task.")
    ok = serializers.BooleanField(source="after.ok", allow_null=True, default=None)
    events = serializers.IntegerField(source="after.events", allow_null=True, default=None)
    checkpoints = serializers.IntegerField(source="after.checkpoints", allow_null=True, default=None)
    first_break = serializers.IntegerField(source="after.first_break", allow_null=True, default=None)
    first_problem = serializers.CharField(source="after.first_problem", allow_null=True, default=None)
    tombstones = serializers.IntegerField(source="after.tombstones", allow_null=True, default=None)


def exported_checkpoints_field() -> serializers.Field:
    """The optional list of kept checkpoint documents a verification is checked against (both verify APIs)."""
    return ExportedCheckpointInputSerializer(
        many=True,
        required=False,
        default=list,
        max_length=MAX_EXPORTED_CHECKPOINTS,
        help_text="Checkpoint documents kept outside Loupe (GET audit/checkpoints/{id}/document/): the first "
        "tree_size events must still give each one's signed root (as verify_audit --checkpoint). Catches a rewrite "
        f"even when the stored checkpoints were deleted too. At most {MAX_EXPORTED_CHECKPOINTS}.",
    )


class AuditVerificationApi(APIView):
    """GET: the last verification of the trail (null: never). POST: verify it now, as the audit page does."""

    class InputSerializer(serializers.Serializer):
        exported_checkpoints = exported_checkpoints_field()

    class OutputSerializer(serializers.Serializer):
        last = LastVerificationSerializer(allow_null=True, help_text="null: the trail was never verified.")

    @extend_schema(responses={200: OutputSerializer, **error_responses(401, 403)})
    def get(self, request: Request) -> Response:
        latest = audit_events_for_user(user=request.user, filters=AuditFilters(action=VERIFIED_ACTION)).first()
        return Response(self.OutputSerializer({"last": latest}).data)

    @extend_schema(
        request=InputSerializer,
        responses={200: VerificationSerializer, **error_responses(400, 401, 403)},
        description="Walks the whole chain and every checkpoint inside this request (a million events take "
        "seconds, so a long trail can outlast a proxy's timeout) and records the verification in the trail "
        "(audit.verified). A broken trail is still a 200: the answer says what was found. Prefer POST "
        "audit/verification-runs/, which takes the same exported_checkpoints, runs in a worker and reports progress.",
        deprecated=True,
    )
    def post(self, request: Request) -> Response:
        require_role(request.user, Role.AUDITOR)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        exported = [document["parsed"] for document in data.validated_data["exported_checkpoints"]]
        result = audit_trail_verify(exported=exported)
        audit_verification_record(result=result, actor=request.user)
        body = {
            "ok": result.ok,
            "events_checked": result.events_checked,
            "chain_break": result.chain_break,
            "problems": result.problems,
            "checkpoints_checked": result.checkpoints_checked,
            "exported_checked": result.exported_checked,
            "tombstones": result.tombstones,
            "last_checkpoint": result.last_checkpoint,
        }
        return Response(VerificationSerializer(body).data)


# --- Merkle proofs ------------------------------------------------------------------------------------


class InclusionProofSerializer(serializers.Serializer):
    kind = serializers.CharField(help_text="inclusion")
    tree_algorithm = serializers.CharField()
    seq = serializers.IntegerField()
    leaf_index = serializers.IntegerField(help_text="seq - 1")
    event_hash = serializers.CharField()
    tree_size = serializers.IntegerField()
    root_hash = serializers.CharField()
    proof = serializers.ListField(child=serializers.CharField(), help_text="RFC 9162 audit path, hex.")
    checkpoint = serializers.DictField(
        allow_null=True, help_text="The stored checkpoint of that tree size (pk, root_hash, key_fingerprint), if any."
    )


class ConsistencyProofSerializer(serializers.Serializer):
    kind = serializers.CharField(help_text="consistency")
    tree_algorithm = serializers.CharField()
    first_size = serializers.IntegerField()
    first_root = serializers.CharField()
    second_size = serializers.IntegerField()
    second_root = serializers.CharField()
    proof = serializers.ListField(child=serializers.CharField(), help_text="RFC 9162 consistency proof, hex.")
    first_checkpoint = serializers.DictField(allow_null=True)
    second_checkpoint = serializers.DictField(allow_null=True)


class InclusionProofApi(APIView):
    """Proof that event `seq` is among the first `tree_size` events (so in the checkpoint of that size)."""

    class InputSerializer(serializers.Serializer):
        seq = serializers.IntegerField(min_value=1, help_text="The event's seq.")
        tree_size = serializers.IntegerField(min_value=1, help_text="The tree (checkpoint) size to prove against.")

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            if attrs["seq"] > attrs["tree_size"]:
                raise serializers.ValidationError({"seq": [f"Event #{attrs['seq']} is beyond tree_size."]})
            return attrs

    @extend_schema(
        parameters=[InputSerializer], responses={200: InclusionProofSerializer, **error_responses(400, 401, 403)}
    )
    def get(self, request: Request) -> Response:
        require_role(request.user, Role.AUDITOR)
        data = self.InputSerializer(data=request.query_params)
        data.is_valid(raise_exception=True)
        try:
            proof = audit_inclusion_proof(seq=data.validated_data["seq"], tree_size=data.validated_data["tree_size"])
        except ValueError as exc:  # the trail is shorter than tree_size
            raise serializers.ValidationError({"tree_size": [str(exc)]}) from exc
        return Response(proof)


class ConsistencyProofApi(APIView):
    """Proof that the first `first_size` events are a prefix of the first `second_size` (an older checkpoint
    is extended, not rewritten, by a later one)."""

    class InputSerializer(serializers.Serializer):
        first_size = serializers.IntegerField(min_value=0, help_text="The older tree size.")
        second_size = serializers.IntegerField(min_value=0, help_text="The newer tree size.")

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            if attrs["first_size"] > attrs["second_size"]:
                raise serializers.ValidationError({"first_size": ["Must not be larger than second_size."]})
            return attrs

    @extend_schema(
        parameters=[InputSerializer], responses={200: ConsistencyProofSerializer, **error_responses(400, 401, 403)}
    )
    def get(self, request: Request) -> Response:
        require_role(request.user, Role.AUDITOR)
        data = self.InputSerializer(data=request.query_params)
        data.is_valid(raise_exception=True)
        try:
            proof = audit_consistency_proof(
                first_size=data.validated_data["first_size"], second_size=data.validated_data["second_size"]
            )
        except ValueError as exc:  # the trail is shorter than second_size
            raise serializers.ValidationError({"second_size": [str(exc)]}) from exc
        return Response(proof)


class ProofVerifyApi(APIView):
    """Check a proof document (as the two proof endpoints give it) with nothing but the document itself.

    It shows consistency with the roots the document names only: compare those with a checkpoint you hold.
    Reads nothing and records nothing.
    """

    class OutputSerializer(serializers.Serializer):
        verifies = serializers.BooleanField(help_text="The proof proves what it says.")

    @extend_schema(
        request=OpenApiTypes.OBJECT,
        responses={200: OutputSerializer, **error_responses(400, 401, 403)},
    )
    def post(self, request: Request) -> Response:
        require_role(request.user, Role.AUDITOR)
        if not isinstance(request.data, dict) or request.data.get("kind") not in ("inclusion", "consistency"):
            raise serializers.ValidationError({"kind": ["A proof document's kind is inclusion or consistency."]})
        return Response(self.OutputSerializer({"verifies": proof_document_verify(dict(request.data))}).data)
