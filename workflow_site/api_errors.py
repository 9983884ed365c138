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
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(exc, exceptions.ValidationError) and isinstance(response.data, dict):
        # Errors of a nested serializer or a list come back nested ({"items": {"0": {"name": [...]}}});
        # the documented error body is flat, messages per field, so they are named by path: "items[0].name".
        response.data = dict(_flat_errors(response.data, ""))
    return response


def _flat_errors(errors: Any, where: str) -> list[tuple[str, Any]]:
    if isinstance(errors, dict):
        flat: list[tuple[str, Any]] = []
        for key, value in errors.items():
            name = str(key)
            if name == "non_field_errors" and where:
                path = where  # a nested object's or list's own errors are the field's
            else:
                path = f"{where}[{name}]" if name.isdigit() and where else f"{where}.{name}" if where else name
            flat += _flat_errors(value, path)
        return flat
    if isinstance(errors, list) and any(isinstance(item, dict | list) for item in errors):
        return [pair for index, item in enumerate(errors) if item for pair in _flat_errors(item, f"{where}[{index}]")]
    return [(where, errors)]
