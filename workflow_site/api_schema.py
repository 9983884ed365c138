"""OpenAPI schema generation: component names for nested serializers, and the error answers.

STYLE.md (9) puts one `InputSerializer` / `OutputSerializer` inside each API
view. drf-spectacular names a component after the serializer class alone, so
every view's `OutputSerializer` would become the same component "Output" and
overwrite the others in the schema (drf_spectacular.W001 in `check --deploy`).
A serializer nested in a view is named after that view instead:
`DatasetListApi.OutputSerializer` -> "DatasetListOutput". Top-level
serializers keep their own names.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular import openapi
from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.utils import Direction, OpenApiResponse
from rest_framework import serializers


class AutoSchema(openapi.AutoSchema):
    def get_serializer_name(self, serializer: serializers.Serializer, direction: Direction) -> str:
        name = super().get_serializer_name(serializer, direction)
        owner = type(serializer).__qualname__.rpartition(".")[0]
        if not owner:
            return name
        return owner.removesuffix("Api") + name


# The error answers, as workflow_site/api_errors.py and DRF give them. One shared
# component each, so a generated client has one error type per shape.
class ErrorDetailSerializer(serializers.Serializer):
    """401, 403, 404 (and a 400 for a body that is not JSON): one message."""

    detail = serializers.CharField()


class ValidationErrorSerializer(serializers.Serializer):
    """400: messages per field, or (from a service rule) a list of messages. See the schema extension below."""


class _ValidationErrorSchema(OpenApiSerializerExtension):
    target_class = ValidationErrorSerializer

    def map_serializer(self, auto_schema: openapi.AutoSchema, direction: Direction) -> dict[str, Any]:
        messages = {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
        return {
            "anyOf": [
                {
                    "type": "object",
                    "additionalProperties": messages,
                    "description": 'Messages per field; "detail" or "non_field_errors" for the whole request.',
                },
                {"type": "array", "items": {"type": "string"}, "description": "Messages about the whole request."},
            ]
        }


_ERROR_DESCRIPTIONS = {
    400: (ValidationErrorSerializer, "The request was not valid; nothing changed."),
    401: (ErrorDetailSerializer, "No valid credentials (send `Authorization: Token <key>`)."),
    403: (
        ErrorDetailSerializer,
        "Not allowed: your roles do not permit it, the id is not in a dataset you work on (or does not exist: "
        "both are answered alike), or a session sent no CSRF token.",
    ),
    404: (ErrorDetailSerializer, "No such object (for auditors, who may read every dataset)."),
}


def error_responses(*codes: int) -> dict[int, OpenApiResponse]:
    """`extend_schema(responses={200: ..., **error_responses(400, 401, 403, 404)})`."""
    return {code: OpenApiResponse(_ERROR_DESCRIPTIONS[code][0], _ERROR_DESCRIPTIONS[code][1]) for code in codes}
