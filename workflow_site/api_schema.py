"""OpenAPI schema generation: component names for nested serializers.

STYLE.md (9) puts one `InputSerializer` / `OutputSerializer` inside each API
view. drf-spectacular names a component after the serializer class alone, so
every view's `OutputSerializer` would become the same component "Output" and
overwrite the others in the schema (drf_spectacular.W001 in `check --deploy`).
A serializer nested in a view is named after that view instead:
`DatasetListApi.OutputSerializer` -> "DatasetListOutput". Top-level
serializers keep their own names.
"""

from __future__ import annotations

from drf_spectacular import openapi
from drf_spectacular.utils import Direction
from rest_framework import serializers


class AutoSchema(openapi.AutoSchema):
    def get_serializer_name(self, serializer: serializers.Serializer, direction: Direction) -> str:
        name = super().get_serializer_name(serializer, direction)
        owner = type(serializer).__qualname__.rpartition(".")[0]
        if not owner:
            return name
        return owner.removesuffix("Api") + name
