"""DRF exception handler: service-level ValidationErrors become 400s with detail."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        if isinstance(detail, dict) and NON_FIELD_ERRORS in detail:
            # A model's clean() files errors that concern no one field under "__all__"; the API names them as
            # DRF does, so a client reads one key whichever layer refused the request.
            detail = {("non_field_errors" if key == NON_FIELD_ERRORS else key): value for key, value in detail.items()}
        exc = exceptions.ValidationError(detail=detail)
    return drf_exception_handler(exc, context)
