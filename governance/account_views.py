"""A signed-in user's own credentials: choose a password, manage API tokens (issue 6, defects 4 and 5)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordChangeForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from governance.credentials import (
    SESSION_MUST_CHANGE,
    api_token_create,
    api_token_get_for_user,
    api_token_lifetime_bounds,
    api_token_revoke,
    api_tokens_for_user,
    password_change_own,
    password_is_temporary,
)


@sensitive_post_parameters()
@require_http_methods(["GET", "POST"])
@login_required
def account_password(request: HttpRequest) -> HttpResponse:
    """Change one's own password (Django's form: the old password, then the new one twice, validated)."""
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}, require_https=False):
        next_url = ""
    form = PasswordChangeForm(request.user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        password_change_own(user=request.user, new_password=form.cleaned_data["new_password1"])
        update_session_auth_hash(request, request.user)  # stay signed in with the new password
        request.session.pop(SESSION_MUST_CHANGE, None)
        messages.success(request, "Your password is changed.")
        return redirect(next_url or "home")
    return render(
        request,
        "governance/account_password.html",
        {"form": form, "next": next_url, "temporary": password_is_temporary(user=request.user)},
        status=400 if request.method == "POST" else 200,
    )


@require_GET
@login_required
def account_tokens(request: HttpRequest) -> HttpResponse:
    return _tokens_page(request)


@require_POST
@login_required
def account_token_create(request: HttpRequest) -> HttpResponse:
    """Create a token and show it once: the answer is this page, never a redirect that could be reloaded."""
    default_days, _ = api_token_lifetime_bounds()
    raw_days = request.POST.get("days", "").strip() or str(default_days)
    try:
        if not (raw_days.isascii() and raw_days.isdigit()):  # isdigit alone accepts "²"
            raise ValidationError({"days": f"The lifetime is a whole number of days, not {raw_days[:20]!r}."})
        token, secret = api_token_create(user=request.user, name=request.POST.get("name", ""), days=int(raw_days))
    except ValidationError as exc:
        return _tokens_page(request, errors=exc.message_dict, posted=request.POST, status=400)
    messages.success(request, f"API token {token.prefix}… created. Copy it now: it is not shown again.")
    return _tokens_page(request, new_token=token, secret=secret)


@require_POST
@login_required
def account_token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    token = api_token_get_for_user(user=request.user, pk=pk)
    try:
        api_token_revoke(token_id=token.pk, by=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"API token {token.prefix}… revoked.")
    return redirect("account_tokens")


def _tokens_page(request: HttpRequest, *, status: int = 200, **context: object) -> HttpResponse:
    default_days, max_days = api_token_lifetime_bounds()
    return render(
        request,
        "governance/account_tokens.html",
        {
            "tokens": api_tokens_for_user(user=request.user),
            "default_days": default_days,
            "max_days": max_days,
            "now": timezone.now(),
            "errors": {},
            "posted": {},
            **context,
        },
        status=status,
    )
