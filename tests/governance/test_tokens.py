"""API tokens: stored as hashes, shown once, expiring; creation and revocation audited (issue 6, defect 5)."""

from __future__ import annotations

import hashlib
import importlib
import json
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from governance.credentials import api_token_create
from governance.models import ApiToken, AuditEvent
from tests.conftest import PASSWORD, login, make_user


@pytest.fixture
def site_admin(db) -> User:
    return User.objects.create_superuser("root-admin", password=PASSWORD)


def _api(secret: str, url: str = "/api/datasets/") -> object:
    return Client().get(url, HTTP_AUTHORIZATION=f"Token {secret}")


def _create_on_the_page(client: Client, name: str = "nightly export", days: str = "7") -> tuple[object, str]:
    response = client.post(reverse("account_token_create"), {"name": name, "days": days})
    assert response.status_code == 200, response.content[:2000]
    secret = response.context["secret"]
    return response, secret


def _payload(event: AuditEvent) -> str:
    return json.dumps([event.before, event.after])


def test_a_token_is_shown_once_and_only_its_hash_is_stored(model_admin):
    client = login(model_admin)

    response, secret = _create_on_the_page(client)

    assert secret.startswith("loupe_") and secret.encode() in response.content
    token = ApiToken.objects.get(user=model_admin)
    assert token.digest == hashlib.sha256(secret.encode()).hexdigest() != secret
    stored = json.dumps(list(ApiToken.objects.values()), default=str)
    assert secret not in stored
    assert token.prefix == secret[: len(token.prefix)] and len(token.prefix) < len(secret) // 3
    # The list shows the token's first characters, never the token again.
    listing = client.get(reverse("account_tokens"))
    assert secret.encode() not in listing.content and token.prefix.encode() in listing.content


def test_a_token_works_for_the_api_exactly_like_before(trained_dataset, model_admin):
    _, secret = api_token_create(user=model_admin, name="script", days=1)

    response = _api(secret)

    assert response.status_code == 200
    assert trained_dataset.pk in [d["id"] for d in response.json()]
    token = ApiToken.objects.get(user=model_admin)
    assert token.last_used_at is not None


def test_a_token_expires_after_its_days_by_default_thirty(model_admin, settings):
    client = login(model_admin)
    client.post(reverse("account_token_create"), {"name": "default lifetime", "days": ""})

    token = ApiToken.objects.get(user=model_admin)
    assert timedelta(days=29, hours=23) < token.expires_at - token.created_at <= timedelta(days=30, seconds=5)


def test_an_expired_token_is_a_401_naming_the_token_scheme(model_admin):
    _, secret = api_token_create(user=model_admin, name="old", days=1)
    now = timezone.now()
    ApiToken.objects.filter(user=model_admin).update(
        created_at=now - timedelta(days=2), expires_at=now - timedelta(seconds=1)
    )

    response = _api(secret)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert "expired" in response.json()["detail"]


def test_a_revoked_token_is_a_401(model_admin):
    client = login(model_admin)
    _, secret = _create_on_the_page(client)
    token = ApiToken.objects.get(user=model_admin)

    response = client.post(reverse("account_token_revoke", args=[token.pk]))

    assert response.status_code == 302
    refused = _api(secret)
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]


def test_creating_and_revoking_a_token_are_audited_without_the_secret(model_admin):
    client = login(model_admin)
    _, secret = _create_on_the_page(client, name="nightly export")
    token = ApiToken.objects.get(user=model_admin)
    client.post(reverse("account_token_revoke", args=[token.pk]))

    created = AuditEvent.objects.get(action="api_token.created", object_id=str(token.pk))
    revoked = AuditEvent.objects.get(action="api_token.revoked", object_id=str(token.pk))
    assert created.actor == revoked.actor == model_admin
    assert created.after["prefix"] == token.prefix and created.after["name"] == "nightly export"
    assert (revoked.before["revoked"], revoked.after["revoked"]) == (False, True)
    for event in (created, revoked):
        assert secret not in _payload(event) and token.digest not in _payload(event)


def test_a_user_cannot_revoke_someone_elses_token(model_admin, db):
    other = make_user("other")
    token, secret = api_token_create(user=other, name="theirs", days=1)

    response = login(model_admin).post(reverse("account_token_revoke", args=[token.pk]))

    assert response.status_code == 403
    token.refresh_from_db()
    assert token.revoked_at is None and _api(secret).status_code == 200


def test_any_signed_in_role_may_create_its_own_token(reviewer, auditor):
    for user in (reviewer, auditor):
        _create_on_the_page(login(user), name=f"{user.username} script")

    assert ApiToken.objects.filter(user__in=[reviewer, auditor]).count() == 2


@pytest.mark.parametrize(
    ("name", "days", "message"),
    [
        ("", "7", b"Give the token a name"),
        ("x", "1000", b"A token lives 1 to 90 days"),
        ("x", "0", b"A token lives 1 to 90 days"),
        ("x", "soon", b"a whole number of days"),
        ("x", "²", b"a whole number of days"),  # a digit to str.isdigit(), not to int()
    ],
)
def test_a_bad_name_or_lifetime_is_refused_and_creates_nothing(model_admin, name, days, message):
    client = login(model_admin)
    events = AuditEvent.objects.count()

    response = client.post(reverse("account_token_create"), {"name": name, "days": days})

    assert response.status_code == 400
    assert message in response.content
    assert not ApiToken.objects.exists() and AuditEvent.objects.count() == events


def test_the_site_admin_sees_tokens_without_their_secret(site_admin, model_admin):
    token, secret = api_token_create(user=model_admin, name="script", days=1)
    client = login(site_admin)

    listing = client.get("/admin/governance/apitoken/")
    detail = client.get(f"/admin/governance/apitoken/{token.pk}/change/")

    assert listing.status_code == detail.status_code == 200
    for page in (listing, detail):
        assert token.prefix.encode() in page.content
        assert secret.encode() not in page.content and token.digest.encode() not in page.content
    # No add form: a token is created by its owner, the only one who ever sees it.
    assert client.get("/admin/governance/apitoken/add/").status_code == 403


def test_the_site_admin_revokes_anyones_token_and_it_is_audited(site_admin, model_admin):
    token, secret = api_token_create(user=model_admin, name="script", days=1)

    response = login(site_admin).post(
        "/admin/governance/apitoken/", {"action": "revoke_selected", "_selected_action": [token.pk]}
    )

    assert response.status_code == 302
    assert _api(secret).status_code == 401
    event = AuditEvent.objects.get(action="api_token.revoked", object_id=str(token.pk))
    assert event.actor == site_admin and event.reason == "revoked by a site admin"


def test_old_clear_text_tokens_are_hashed_and_deleted_by_the_migration(model_admin):
    """DRF's authtoken table of an existing install: its keys keep working, hashed; the clear text is gone."""
    migration = importlib.import_module("governance.migrations.0008_hash_drf_clear_text_tokens")
    old_key = "0123456789abcdef0123456789abcdef01234567"
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, created timestamp, user_id integer)")
        cursor.execute("INSERT INTO authtoken_token VALUES (%s, %s, %s)", [old_key, timezone.now(), model_admin.pk])
    try:
        from django.apps import apps

        # The function reads only the schema editor's connection.
        migration.hash_clear_text_tokens(apps, SimpleNamespace(connection=connection))
        with connection.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM authtoken_token")
            assert cursor.fetchone()[0] == 0
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE authtoken_token")

    token = ApiToken.objects.get(user=model_admin)
    assert token.digest == hashlib.sha256(old_key.encode()).hexdigest()
    assert _api(old_key).status_code == 200
