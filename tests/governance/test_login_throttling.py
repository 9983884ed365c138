"""Login throttling (django-axes): lockouts on /login/ and /admin/login/, one audit event per lockout."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from unittest import mock

import pytest
from axes.models import AccessAttempt, AccessFailureLog
from django.conf import settings
from django.contrib.auth.models import User
from django.db.models import F
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from governance.models import AuditEvent
from governance.selectors import audit_chain_verify
from tests.helpers import PASSWORD, make_user

LIMIT = settings.AXES_FAILURE_LIMIT
COOL_OFF = settings.AXES_COOLOFF_TIME


@pytest.fixture
def site_admin(db) -> User:
    user = make_user("siteadmin")
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    return user


def _sign_in(client: Client, username: str, password: str, *, admin: bool = False):
    if admin:
        return client.post(reverse("admin:login"), {"username": username, "password": password, "next": "/admin/"})
    return client.post(reverse("login"), {"username": username, "password": password})


def _fail_until_locked(client: Client, username: str, *, admin: bool = False) -> list[int]:
    return [_sign_in(client, username, "wrong-guess-123", admin=admin).status_code for _ in range(LIMIT)]


@contextmanager
def _later(delta: timedelta) -> Iterator[None]:
    """Move the clocks axes and the audit trail read `delta` ahead."""
    real_now = timezone.now

    def moved() -> object:
        return real_now() + delta

    with (
        mock.patch("django.utils.timezone.now", moved),
        mock.patch("axes.attempts.now", moved),
        mock.patch("axes.handlers.proxy.now", moved),
    ):
        yield


def _locked_out_events() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action="auth.locked_out").order_by("seq"))


def test_the_limit_is_five_failures_with_a_fifteen_minute_cool_off_by_default():
    assert (LIMIT, COOL_OFF) == (5, timedelta(minutes=15))
    assert settings.AUTHENTICATION_BACKENDS[0] == "axes.backends.AxesStandaloneBackend"
    assert settings.MIDDLEWARE[-1] == "axes.middleware.AxesMiddleware"


@pytest.mark.parametrize("admin", [False, True], ids=["login", "admin_login"])
def test_after_five_wrong_passwords_the_right_one_is_refused(site_admin, admin):
    client = Client()

    statuses = _fail_until_locked(client, "siteadmin", admin=admin)
    response = _sign_in(client, "siteadmin", PASSWORD, admin=admin)

    assert statuses == [200] * (LIMIT - 1) + [429]
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session
    assert not AuditEvent.objects.filter(action="auth.login").exists()


@pytest.mark.parametrize("admin", [False, True], ids=["login", "admin_login"])
def test_the_locked_out_page_says_why_and_when_to_try_again(site_admin, admin):
    client = Client()
    _fail_until_locked(client, "siteadmin", admin=admin)

    response = _sign_in(client, "siteadmin", PASSWORD, admin=admin)

    assert response.status_code == 429
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert "Sign-in locked for now" in page
    assert "Too many failed sign-ins for <strong>siteadmin</strong>" in page
    assert "Wait 15 minutes, then try again" in page
    assert 'name="password"' not in page


def test_a_lockout_is_one_audit_event_and_failures_stay_off_the_chain(outsider):
    client = Client()

    _fail_until_locked(client, "outsider")
    for _ in range(10):  # the flood goes on during the lockout
        _sign_in(client, "outsider", "wrong-guess-123")
    _sign_in(client, "outsider", PASSWORD)

    [event] = _locked_out_events()
    assert AuditEvent.objects.count() == 1  # no per-failure event, no login
    assert event.actor is None
    assert event.actor_username == "outsider"
    assert (event.object_type, event.object_id) == ("user", str(outsider.pk))
    assert event.after == {"username": "outsider", "ip_address": "127.0.0.1", "failures": LIMIT, "cool_off_minutes": 15}
    assert "wrong-guess-123" not in str(event.after) + event.reason
    # The failures are axes' to keep, not the chain's.
    assert AccessAttempt.objects.get(username="outsider").failures_since_start == LIMIT + 11
    assert AccessFailureLog.objects.filter(username="outsider").count() == LIMIT + 11
    checked, broken = audit_chain_verify()
    assert (checked, broken) == (1, None)


def test_failures_below_the_limit_write_nothing_to_the_chain(outsider):
    client = Client()

    for _ in range(LIMIT - 1):
        _sign_in(client, "outsider", "wrong-guess-123")

    assert not AuditEvent.objects.exists()
    assert AccessAttempt.objects.get(username="outsider").failures_since_start == LIMIT - 1


def test_a_lockout_for_an_unknown_username_is_recorded_without_an_account(db):
    _fail_until_locked(Client(), "mallory")

    [event] = _locked_out_events()
    assert event.actor_username == "mallory"
    assert (event.object_type, event.object_id) == ("user", "")


def test_a_different_user_from_the_same_address_is_not_locked(outsider, auditor):
    attacker = Client()
    _fail_until_locked(attacker, "outsider")

    response = _sign_in(Client(), "auditor", PASSWORD)

    assert response.status_code == 302
    assert AuditEvent.objects.filter(action="auth.login", actor=auditor).exists()


def test_the_same_user_from_another_address_is_not_locked(outsider):
    _fail_until_locked(Client(REMOTE_ADDR="203.0.113.7"), "outsider")

    response = _sign_in(Client(REMOTE_ADDR="198.51.100.20"), "outsider", PASSWORD)

    assert response.status_code == 302


def test_after_the_cool_off_the_right_password_works(outsider):
    client = Client()
    _fail_until_locked(client, "outsider")
    assert _sign_in(client, "outsider", PASSWORD).status_code == 429

    # The last failure (the refused right password counts too) is now a cool-off ago.
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - COOL_OFF - timedelta(seconds=1))
    response = _sign_in(client, "outsider", PASSWORD)

    assert response.status_code == 302
    assert AuditEvent.objects.filter(action="auth.login", actor=outsider).exists()


def test_a_second_lockout_after_the_cool_off_is_recorded_again(outsider):
    _fail_until_locked(Client(), "outsider")

    with _later(COOL_OFF + timedelta(minutes=1)):
        statuses = _fail_until_locked(Client(), "outsider")

    assert statuses[-1] == 429
    assert len(_locked_out_events()) == 2
    assert audit_chain_verify()[1] is None


def test_a_successful_login_resets_the_count(outsider):
    client = Client()
    for _ in range(LIMIT - 1):
        _sign_in(client, "outsider", "wrong-guess-123")

    assert _sign_in(client, "outsider", PASSWORD).status_code == 302
    assert not AccessAttempt.objects.filter(username="outsider").exists()

    client = Client()
    statuses = [_sign_in(client, "outsider", "wrong-guess-123").status_code for _ in range(LIMIT - 1)]
    assert statuses == [200] * (LIMIT - 1)
    assert _sign_in(client, "outsider", PASSWORD).status_code == 302
    assert not _locked_out_events()


def test_the_chain_verifies_after_logins_and_lockouts(outsider, auditor, site_admin):
    _sign_in(Client(), "auditor", PASSWORD)
    _fail_until_locked(Client(), "outsider")
    _fail_until_locked(Client(), "siteadmin", admin=True)
    _sign_in(Client(), "mallory", "wrong-guess-123")

    checked, broken = audit_chain_verify()

    assert broken is None
    assert checked == AuditEvent.objects.count() == 3
    assert [e.action for e in AuditEvent.objects.order_by("seq")] == [
        "auth.login",
        "auth.locked_out",
        "auth.locked_out",
    ]
