"""Sends a user whose password somebody else set to the password-change page, from every page.

The flag lives in the session (set at sign-in by governance/auth_audit.py), so
this costs no query. A site admin resetting the password of someone signed in
ends their session anyway (Django's session hash follows the password), so the
flag is set at their next sign-in. The API is left to DRF (`PasswordIsOwn`
answers 403 in JSON), sign-out stays open, and htmx requests get HX-Redirect so
the page, not a fragment, changes.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django_htmx.http import HttpResponseClientRedirect

from governance.credentials import SESSION_MUST_CHANGE


class PasswordChangeRequiredMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        session = getattr(request, "session", None)
        if session is None or not session.get(SESSION_MUST_CHANGE) or self._open(request.path):
            return self.get_response(request)
        change_url = reverse("account_password")
        htmx = getattr(request, "htmx", None)
        if htmx:
            back_to = htmx.current_url_abs_path or "/"
            return HttpResponseClientRedirect(f"{change_url}?{urlencode({'next': back_to})}")
        query = f"?{urlencode({'next': request.get_full_path()})}" if request.method == "GET" else ""
        return HttpResponseRedirect(change_url + query)

    @staticmethod
    def _open(path: str) -> bool:
        open_paths = (reverse("account_password"), reverse("logout"), reverse("admin:logout"), reverse("health"))
        return path in open_paths or path.startswith(("/api/", "/static/"))
