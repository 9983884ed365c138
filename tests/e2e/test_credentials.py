"""In a real browser: a password the site admin set must be replaced at sign-in; an API token is shown once."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from governance.models import ApiToken
from tests.e2e.browser import sign_in, sign_out, sync_api
from tests.e2e.test_accessibility import axe_violations
from tests.e2e.test_csp import Violations
from tests.helpers import PASSWORD

expect = sync_api().expect
pytestmark = pytest.mark.e2e

ADMIN_SET = "set-by-the-admin-passphrase"
OWN = "my-very-own-passphrase-42"


def test_a_reviewer_replaces_the_admins_password_then_makes_and_revokes_a_token(live_server, page, reviewer):
    User.objects.create_superuser("root-admin", password=PASSWORD, first_name="Root")
    base = live_server.url
    csp = Violations(page)

    def clean(where: str) -> None:
        """No serious or critical axe violation, nothing refused under the CSP."""
        csp.check(where)
        assert not axe_violations(page), where

    # The site admin sets the reviewer's password in the admin.
    sign_in(page, base, "root-admin")
    page.goto(f"{base}/admin/auth/user/{reviewer.pk}/password/")
    usable = page.locator("input[name=usable_password][value=true]")
    if usable.count():
        usable.check()
    page.locator("input[name=password1]").fill(ADMIN_SET)
    page.locator("input[name=password2]").fill(ADMIN_SET)
    page.locator("input[type=submit]").first.click()
    expect(page.get_by_text("This password is temporary: reviewer must choose their own")).to_be_visible()
    page.goto(f"{base}/")
    sign_out(page)

    # The reviewer signs in with it and is held on the password page, wherever they go.
    page.get_by_label("Username").fill("reviewer")
    page.get_by_label("Password").fill(ADMIN_SET)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Choose your own password")).to_be_visible()
    page.goto(f"{base}/governance/audit/")
    expect(page.get_by_role("heading", name="Choose your own password")).to_be_visible()
    clean("choose a password")

    page.get_by_label("Old password").fill(ADMIN_SET)
    page.get_by_label("New password", exact=True).fill(OWN)
    page.get_by_label("New password confirmation").fill(OWN)
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_text("Your password is changed.")).to_be_visible()

    # A token: shown once, listed by its first characters afterwards, revoked.
    page.get_by_role("link", name="API tokens").click()
    page.get_by_label("What is it for?").fill("my notebook")
    page.get_by_role("button", name="Create token").click()
    secret = page.get_by_label("Copy it now; it is not shown again.").input_value()
    assert secret.startswith("loupe_")
    clean("a new token, shown once")
    page.get_by_role("link", name="API tokens").click()
    token = ApiToken.objects.get(user=reviewer)
    expect(page.get_by_role("row", name=token.prefix)).to_be_visible()
    assert secret not in page.content()
    page.get_by_role("button", name=f"Revoke token {token.prefix}").click()
    expect(page.get_by_text(f"API token {token.prefix}… revoked.")).to_be_visible()
    clean("the token list")
    csp.assert_none()
