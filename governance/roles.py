"""Roles are Django groups; per-dataset membership lives in annotations.

Every view and API endpoint calls one of these on the server. Denials raise
PermissionDenied, which Django and DRF both turn into a 403.
"""

from __future__ import annotations

from enum import StrEnum

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied


class Role(StrEnum):
    REVIEWER = "reviewer"
    ADJUDICATOR = "adjudicator"
    MODEL_ADMIN = "model_admin"
    AUDITOR = "auditor"


ROLE_LABELS = {
    Role.REVIEWER: "Reviewer",
    Role.ADJUDICATOR: "Adjudicator",
    Role.MODEL_ADMIN: "Model admin",
    Role.AUDITOR: "Auditor",
}

# Who may review items: adjudicators can do everything reviewers can.
REVIEW_ROLES = (Role.REVIEWER, Role.ADJUDICATOR)


def user_roles(user: AbstractBaseUser | AnonymousUser) -> frozenset[str]:
    """The user's role names, cached on the user object for the request."""
    if not user.is_authenticated or not user.is_active:
        return frozenset()
    cached = getattr(user, "_loupe_roles", None)
    if cached is None:
        cached = frozenset(user.groups.values_list("name", flat=True))  # type: ignore[attr-defined]
        user._loupe_roles = cached  # type: ignore[union-attr]
    return cached


def has_role(user: AbstractBaseUser | AnonymousUser, *roles: Role) -> bool:
    return bool(user_roles(user) & {str(r) for r in roles})


def require_role(user: AbstractBaseUser | AnonymousUser, *roles: Role) -> None:
    if not has_role(user, *roles):
        wanted = " or ".join(ROLE_LABELS[r] for r in roles)
        raise PermissionDenied(f"This needs the {wanted} role.")
