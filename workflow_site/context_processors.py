from __future__ import annotations

from django.http import HttpRequest

from workflow_site.access import Role, has_role


def roles(request: HttpRequest) -> dict[str, bool]:
    user = request.user
    return {
        "is_reviewer": has_role(user, Role.REVIEWER, Role.ADJUDICATOR),
        "is_adjudicator": has_role(user, Role.ADJUDICATOR),
        "is_model_admin": has_role(user, Role.MODEL_ADMIN),
        "is_auditor": has_role(user, Role.AUDITOR),
    }
