"""REST API for model cards, datasheets and their narratives (issue 10; governance/document_views.py and
narrative_views.py).

Who may do what is the pages' rule: model admins of the dataset and auditors read the documents (each with
its narrative: the signed text, its signatures checked against the record now, and every version); model
admins of the dataset write a narrative (the form's GET and POST) and sign a version. The services are
governance/narratives.py's, so the audit events are the pages' (narrative.written, narrative.signed) and a
wrong password is recorded as it is there.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Model
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from governance.apis import SignatureCheckSerializer
from governance.model_cards import datasheet, model_card
from governance.models import DocumentNarrative, Signature
from governance.narratives import (
    MAX_SECTION_CHARS,
    SECTIONS,
    narrative_document,
    narrative_get_for_user,
    narrative_latest,
    narrative_sign,
    narrative_write,
)
from models_app.selectors import model_version_get_for_user, snapshot_get_for_user
from workflow_site.access import Role
from workflow_site.api_schema import error_responses

Document = DocumentNarrative.Document
WRITE_ROLES = (Role.MODEL_ADMIN,)


class ModelCardApi(APIView):
    """The model card of a registered version (the model card page's JSON), its narrative included."""

    @extend_schema(responses={200: OpenApiTypes.OBJECT, **error_responses(401, 403, 404)})
    def get(self, request: Request, model_version_id: int) -> Response:
        return Response(model_card(model_version_get_for_user(user=request.user, pk=model_version_id)))


class DatasheetApi(APIView):
    """The datasheet of a frozen training snapshot (the datasheet page's JSON), its narrative included."""

    @extend_schema(responses={200: OpenApiTypes.OBJECT, **error_responses(401, 403, 404)})
    def get(self, request: Request, snapshot_id: int) -> Response:
        return Response(datasheet(snapshot_get_for_user(user=request.user, pk=snapshot_id)))


# --- the narrative as the documents show it --------------------------------------------------------------


class SignedBySerializer(serializers.Serializer):
    printed_name = serializers.CharField()
    username = serializers.CharField()
    meaning = serializers.ChoiceField(choices=Signature.Meaning.values)
    meaning_label = serializers.CharField()
    signed_at = serializers.DateTimeField()
    record_hash = serializers.CharField(help_text="sha256 of the narrative (and its subject) as signed.")
    verification = SignatureCheckSerializer(help_text="The signature checked against the narrative as it is now.")


class NarrativeVersionSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="Sign it with POST narratives/{id}/sign/.")
    version = serializers.IntegerField()
    status = serializers.ChoiceField(choices=["signed", "draft"])
    shown = serializers.BooleanField(help_text="The version the document shows (the latest signed by its author).")
    written_by = serializers.CharField()
    written_at = serializers.DateTimeField()
    change_note = serializers.CharField(allow_blank=True)
    subject_changed_since = serializers.BooleanField(
        help_text="The model version or snapshot it describes has changed since it was written."
    )
    signatures = SignedBySerializer(many=True)


class NarrativeSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["signed", "draft_only", "not_written"])
    version = serializers.IntegerField(allow_null=True, help_text="The version shown; null: none signed yet.")
    sections = serializers.DictField(child=serializers.CharField(allow_blank=True), help_text="Its text, by section.")
    headings = serializers.DictField(child=serializers.CharField(), help_text="Each section's heading.")
    signatures = SignedBySerializer(many=True)
    newer_draft = serializers.IntegerField(allow_null=True, help_text="A draft newer than the shown version.")
    history = NarrativeVersionSerializer(many=True, help_text="Every version, newest first.")


class NarrativeFormSectionSerializer(serializers.Serializer):
    name = serializers.CharField()
    heading = serializers.CharField()
    hint = serializers.CharField(help_text="What to write.")
    text = serializers.CharField(allow_blank=True, help_text="The newest version's text (draft or signed).")


class NarrativeFormSerializer(serializers.Serializer):
    """What the writing form starts from: the newest version's sections, and the narrative as shown."""

    document = serializers.ChoiceField(choices=Document.values)
    subject_id = serializers.IntegerField()
    latest_version = serializers.IntegerField(allow_null=True, help_text="The newest version, draft or signed.")
    sections = NarrativeFormSectionSerializer(many=True)
    narrative = NarrativeSerializer()


def _input_serializer(owner: str, document: str) -> type[serializers.Serializer]:
    """The POST body: one text field per section of `document` (SECTIONS names them), and how to save."""
    fields: dict[str, Any] = {
        name: serializers.CharField(
            required=False,
            allow_blank=True,
            default="",
            trim_whitespace=False,  # the service strips and keeps line breaks
            help_text=f"{heading}: {hint} Plain text, at most {MAX_SECTION_CHARS:,} characters; empty: not written.",
        )
        for name, heading, hint in SECTIONS[document]
    }
    fields["change_note"] = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="What this version changes (at most 500 characters)."
    )
    fields["sign"] = serializers.BooleanField(
        required=False, default=False, help_text="Sign the new version as its author (meaning authored) at once."
    )
    fields["password"] = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="Your password, re-entered: needed to sign."
    )
    # Named after the view it sits in (workflow_site/api_schema.py): "<Owner>Input" in the schema.
    return type("InputSerializer", (serializers.Serializer,), {**fields, "__qualname__": f"{owner}.InputSerializer"})


class _NarrativeApi(APIView):
    """The writing form (GET) and a new version (POST), for one document kind."""

    document: str

    def _subject(self, request: Request, subject_id: int) -> Model:
        raise NotImplementedError

    def _form(self, subject: Any) -> dict[str, Any]:
        latest = narrative_latest(self.document, subject)
        values = latest.sections if latest else {}
        return {
            "document": self.document,
            "subject_id": subject.pk,
            "latest_version": latest.version if latest else None,
            "sections": [
                {"name": name, "heading": heading, "hint": hint, "text": values.get(name, "")}
                for name, heading, hint in SECTIONS[self.document]
            ],
            "narrative": narrative_document(self.document, subject),
        }

    def get(self, request: Request, subject_id: int) -> Response:
        return Response(NarrativeFormSerializer(self._form(self._subject(request, subject_id))).data)

    def post(self, request: Request, subject_id: int) -> Response:
        subject = self._subject(request, subject_id)
        data = self.InputSerializer(data=request.data)  # type: ignore[attr-defined]
        data.is_valid(raise_exception=True)
        values = data.validated_data
        narrative_write(
            user=request.user,
            document=self.document,
            subject=subject,
            sections={name: values[name] for name, _, _ in SECTIONS[self.document]},
            change_note=values["change_note"],
            sign=values["sign"],
            password=values["password"],
        )
        return Response(NarrativeFormSerializer(self._form(subject)).data, status=status.HTTP_201_CREATED)


_POST_WORDS = (
    "Saves a new version (never changes one): a draft, or with sign=true signed as its author with your password "
    "(the document then shows it). Each field's error under its name; a wrong password is recorded and saves nothing."
)


class ModelCardNarrativeApi(_NarrativeApi):
    """A model card's narrative, for its writers: model admins of the version's dataset."""

    document = Document.MODEL_CARD
    InputSerializer = _input_serializer("ModelCardNarrativeApi", Document.MODEL_CARD)

    def _subject(self, request: Request, subject_id: int) -> Model:
        return model_version_get_for_user(user=request.user, pk=subject_id, roles=WRITE_ROLES)

    @extend_schema(responses={200: NarrativeFormSerializer, **error_responses(401, 403, 404)})
    def get(self, request: Request, subject_id: int) -> Response:
        return super().get(request, subject_id)

    @extend_schema(
        request=InputSerializer,
        responses={201: NarrativeFormSerializer, **error_responses(400, 401, 403, 404)},
        description=_POST_WORDS,
    )
    def post(self, request: Request, subject_id: int) -> Response:
        return super().post(request, subject_id)


class DatasheetNarrativeApi(_NarrativeApi):
    """A datasheet's narrative, for its writers: model admins of the snapshot's dataset."""

    document = Document.DATASHEET
    InputSerializer = _input_serializer("DatasheetNarrativeApi", Document.DATASHEET)

    def _subject(self, request: Request, subject_id: int) -> Model:
        return snapshot_get_for_user(user=request.user, pk=subject_id, roles=WRITE_ROLES)

    @extend_schema(responses={200: NarrativeFormSerializer, **error_responses(401, 403, 404)})
    def get(self, request: Request, subject_id: int) -> Response:
        return super().get(request, subject_id)

    @extend_schema(
        request=InputSerializer,
        responses={201: NarrativeFormSerializer, **error_responses(400, 401, 403, 404)},
        description=_POST_WORDS,
    )
    def post(self, request: Request, subject_id: int) -> Response:
        return super().post(request, subject_id)


class NarrativeSignApi(APIView):
    """Sign a saved version: as its author (its writer, the newest version) or as a reviewer (another model
    admin, the version the document shows). Audited as narrative.signed; a wrong password is recorded."""

    class InputSerializer(serializers.Serializer):
        meaning = serializers.ChoiceField(
            choices=[Signature.Meaning.AUTHORED, Signature.Meaning.REVIEWED], help_text="authored or reviewed."
        )
        password = serializers.CharField(help_text="Your password, re-entered: it signs the version.")

    @extend_schema(request=InputSerializer, responses={200: NarrativeSerializer, **error_responses(400, 401, 403, 404)})
    def post(self, request: Request, pk: int) -> Response:
        narrative = narrative_get_for_user(user=request.user, pk=pk, roles=WRITE_ROLES)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        narrative_sign(
            user=request.user,
            narrative=narrative,
            meaning=data.validated_data["meaning"],
            password=data.validated_data["password"],
        )
        subject = narrative.model_version if narrative.document == Document.MODEL_CARD else narrative.snapshot
        return Response(NarrativeSerializer(narrative_document(narrative.document, subject)).data)
