"""Who may do what: roles (Django groups) and per-dataset membership.

A leaf module: every app imports it, and it imports none of them. Roles are
site-wide groups; membership says which datasets a reviewer, adjudicator or
model admin works on. Auditors read every dataset without membership.

Every view and API endpoint reaches these through a selector, on the server.
Denials raise PermissionDenied, which Django and DRF both turn into a 403.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.http import Http404

# Whoever is making the request: a signed-in user or the anonymous one.
AnyUser = AbstractBaseUser | AnonymousUser


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
# Who may read model versions, training runs and promotions.
MODEL_READ_ROLES = (Role.MODEL_ADMIN, Role.AUDITOR)
# Who may read a dataset's overview (its schema, counts and imports).
DATASET_READ_ROLES = (Role.REVIEWER, Role.ADJUDICATOR, Role.MODEL_ADMIN, Role.AUDITOR)


def user_roles(user: AnyUser) -> frozenset[str]:
    """The user's role names, cached on the user object for the request."""
    if not user.is_authenticated or not user.is_active:
        return frozenset()
    cached = getattr(user, "_loupe_roles", None)
    if cached is None:
        cached = frozenset(_group_names(user.pk))
        user._loupe_roles = cached  # type: ignore[union-attr]
    return cached


_ROLE_SEPARATOR = "\x1f"  # the ASCII unit separator: in no group name a site admin would type


def role_names_sql(user_id_sql: str) -> str:
    """An SQL expression for the names of the groups of the user whose id is `user_id_sql`, as one string
    (`roles_remember` reads it back). Queries that load a user on every request (the session's user,
    an API token's owner) add it to their SELECT, so the roles cost no round trip of their own."""
    from django.contrib.auth.models import Group, User

    through = User.groups.through._meta
    quote = connection.ops.quote_name
    aggregate = "string_agg(g.name, chr(31))" if connection.vendor == "postgresql" else "group_concat(g.name, char(31))"
    return (
        f"(SELECT {aggregate} FROM {quote(Group._meta.db_table)} g JOIN {quote(through.db_table)} ug"
        f" ON ug.{quote(through.get_field('group').column)} = g.id"
        f" WHERE ug.{quote(through.get_field('user').column)} = {user_id_sql})"
    )


def roles_remember(user: AbstractBaseUser, role_names: str | None) -> None:
    """Cache on `user`, for the request, the roles a `role_names_sql` expression returned."""
    user._loupe_roles = frozenset(role_names.split(_ROLE_SEPARATOR)) if role_names else frozenset()  # type: ignore[attr-defined]


def _group_names(user_id: int) -> list[str]:
    """`user.groups.values_list("name")` as one fixed statement (workflow_site/sql_rows.py says why)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {role_names_sql('%s')}", [user_id])
        (names,) = cursor.fetchone()
    return names.split(_ROLE_SEPARATOR) if names else []


def has_role(user: AnyUser, *roles: Role) -> bool:
    return bool(user_roles(user) & {str(r) for r in roles})


def require_role(user: AnyUser, *roles: Role) -> None:
    if not has_role(user, *roles):
        wanted = " or ".join(ROLE_LABELS[r] for r in roles)
        raise PermissionDenied(f"This needs the {wanted} role.")


# One answer for "in a dataset you are not a member of" and "does not exist", so
# a member of one dataset cannot probe which ids exist in the others.
NOT_IN_YOUR_DATASETS = "Nothing with that id in the datasets you work on."


def missing_record(user: AnyUser, roles: tuple[Role, ...], what: str) -> Exception:
    """What to raise for an id that does not exist.

    A 404 only for those who may read every dataset (auditors, when AUDITOR is
    among `roles`): they learn nothing by it. Everyone else gets the same 403
    as for a record in another dataset.
    """
    if Role.AUDITOR in roles and has_role(user, Role.AUDITOR):
        return Http404(f"No such {what}.")
    return PermissionDenied(NOT_IN_YOUR_DATASETS)


def require_dataset_access(user: AnyUser, dataset: Any, roles: tuple[Role, ...]) -> None:
    """Raise PermissionDenied unless `user` may act on `dataset` in one of `roles`.

    Precondition: require_role(user, *roles) already passed (selectors check the
    role before they look the record up, so a forbidden id is a 403, not a 404).
    Auditors (when AUDITOR is among `roles`) read every dataset; the other
    roles need a membership. `dataset` is any object with a `memberships`
    relation (annotations.Dataset), so this module imports no app.
    """
    if Role.AUDITOR in roles and has_role(user, Role.AUDITOR):
        return
    if not dataset.memberships.filter(user=user).exists():
        raise PermissionDenied(NOT_IN_YOUR_DATASETS)
