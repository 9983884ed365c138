"""The sign-in backend: Django's ModelBackend, loading the session's user with their roles.

Every request of a signed-in user loads the user (`get_user`) and then needs
their roles (workflow_site/access.py). Here both come from one fixed statement
(workflow_site/sql_rows.py), so the roles cost no round trip of their own.
Sign-in itself (`authenticate`) is ModelBackend's, unchanged.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import ValidationError
from django.db import connection

from workflow_site import sql_rows
from workflow_site.access import role_names_sql, roles_remember


class RoleReadingModelBackend(ModelBackend):
    def get_user(self, user_id: Any) -> Any:
        user_model = get_user_model()
        try:
            user_id = user_model._meta.pk.to_python(user_id)
        except (ValidationError, TypeError, ValueError):  # a session whose user id is not one: nobody signed in
            return None
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {sql_rows.columns(user_model, 'u')}, {role_names_sql('u.id')}"
                f" FROM {sql_rows.table(user_model)} u WHERE u.id = %s",
                [user_id],
            )
            row = cursor.fetchone()
        if row is None:
            return None
        user_values, (role_names,) = sql_rows.split(row, user_model)
        user = sql_rows.build(user_model, user_values)
        if not self.user_can_authenticate(user):
            return None
        roles_remember(user, role_names)
        return user
