"""REST API for lineage (governance/lineage.py): the same walk the lineage page shows, for any start node."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from governance.lineage import lineage_document, lineage_for_user
from governance.lineage_nodes import KINDS
from workflow_site.api_schema import error_responses


class LineageApi(APIView):
    """Where a record came from (up) and what it went into (down), section by section, as on its page."""

    @extend_schema(
        description=f"`kind` is one of: {', '.join(KINDS)}. Auditors and the dataset's model admins; no item "
        "feature values are included (the item history shows those, and logs the read).",
        responses={200: OpenApiTypes.OBJECT, **error_responses(401, 403, 404)},
    )
    def get(self, request: Request, kind: str, pk: int) -> Response:
        return Response(lineage_document(lineage_for_user(user=request.user, kind=kind, pk=pk)))
